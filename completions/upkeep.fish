# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_upkeep_global_optspecs
    string join \n config= json q/quiet v/verbose y/yes no-progress no-detach h/help V/version
end

function __fish_upkeep_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_upkeep_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_upkeep_using_subcommand
    set -l cmd (__fish_upkeep_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c upkeep -n "__fish_upkeep_needs_command" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_needs_command" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_needs_command" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_needs_command" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_needs_command" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_needs_command" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_needs_command" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_needs_command" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_needs_command" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "check" -d 'Fetch repository metadata and report whether a newer version exists (exit 100 when one does). Without TARGET: every target, one line each that has an update; nothing when all are up to date (for cron)'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "versions" -d 'List available versions, newest first, marking the installed one and those cached locally'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "plan" -d 'Everything short of stopping the service: pick the version and path, download, verify, run preflight checks, show config changes and notes'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "upgrade" -d 'Plan, then apply: back up, stop, install, reload, start, verify health'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "rollback" -d 'Undo the last completed upgrade'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "downgrade" -d 'Go back to a version recorded in the history'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "status" -d 'Installed version, unit states, the last run, any interrupted run and the next command to run'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "history" -d 'Past runs with their steps, outcome, versions and durations'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "diff-config" -d 'The config changes between the installed and a candidate version, secrets masked'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "recover" -d 'Finish or undo a run that was interrupted'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "clean" -d 'Prune cached packages and backups beyond the retention policy'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "fleet" -d 'The fleet this node takes turns with (`[fleet]`): its slots, holders, halt, nodes and versions; lift a halt or a bad-version mark'
complete -c upkeep -n "__fish_upkeep_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand check" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand versions" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -l to -d 'The version to aim for: a full package version or the product version it starts with (2.1.0 matches 2.1.0-1). Default: the newest' -r
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand plan" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l to -d 'The version to aim for: a full package version or the product version it starts with (2.1.0 matches 2.1.0-1). Default: the newest' -r
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l dry-run -d 'Show what would be done and change nothing'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l unattended -d 'For timers: act on every target (or the one named) by its `auto_upgrade` setting, and apply only inside its maintenance window; never asks. Quiet when there is nothing to do'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand upgrade" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand rollback" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -l to -d 'The version to go back to (one recorded in the history)' -r
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand downgrade" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand status" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -l limit -d 'How many runs to list, newest first' -r
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -a "show" -d 'One run with all its steps'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and not __fish_seen_subcommand_from show help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "show" -d 'One run with all its steps'
complete -c upkeep -n "__fish_upkeep_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -l to -d 'The version to aim for: a full package version or the product version it starts with (2.1.0 matches 2.1.0-1). Default: the newest' -r
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand diff-config" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand recover" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand clean" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -f -a "status" -d 'The group read from etcd: slots and their holders (node, target, run, versions, since), the halt, each node\'s installed version and last plan and run, each version\'s canary state. Needs no root'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -f -a "resume" -d 'Lift the group\'s halt, clear every bad-version mark and forget slots whose run died (after an operator\'s look). Changes the group\'s state in etcd only, nothing on this host'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and not __fish_seen_subcommand_from status resume help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -l config -d 'Configuration file; drop-ins are read from conf.d/ beside it' -r -F
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -l json -d 'Machine output: one JSON document on stdout'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -s q -l quiet -d 'Print nothing but errors (and, for check, updates)'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -s v -l verbose -d 'More detail in the log on stderr'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -s y -l yes -d 'Never ask: answer yes to every confirmation'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -l no-progress -d 'Draw no progress bars'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -l no-detach -d 'Run upgrade, rollback or downgrade in this process, not in a transient systemd unit that survives the terminal going away'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from resume" -s V -l version -d 'Print version'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "status" -d 'The group read from etcd: slots and their holders (node, target, run, versions, since), the halt, each node\'s installed version and last plan and run, each version\'s canary state. Needs no root'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Lift the group\'s halt, clear every bad-version mark and forget slots whose run died (after an operator\'s look). Changes the group\'s state in etcd only, nothing on this host'
complete -c upkeep -n "__fish_upkeep_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "check" -d 'Fetch repository metadata and report whether a newer version exists (exit 100 when one does). Without TARGET: every target, one line each that has an update; nothing when all are up to date (for cron)'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "versions" -d 'List available versions, newest first, marking the installed one and those cached locally'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "plan" -d 'Everything short of stopping the service: pick the version and path, download, verify, run preflight checks, show config changes and notes'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "upgrade" -d 'Plan, then apply: back up, stop, install, reload, start, verify health'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "rollback" -d 'Undo the last completed upgrade'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "downgrade" -d 'Go back to a version recorded in the history'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "status" -d 'Installed version, unit states, the last run, any interrupted run and the next command to run'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "history" -d 'Past runs with their steps, outcome, versions and durations'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "diff-config" -d 'The config changes between the installed and a candidate version, secrets masked'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "recover" -d 'Finish or undo a run that was interrupted'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "clean" -d 'Prune cached packages and backups beyond the retention policy'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "fleet" -d 'The fleet this node takes turns with (`[fleet]`): its slots, holders, halt, nodes and versions; lift a halt or a bad-version mark'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and not __fish_seen_subcommand_from check versions plan upgrade rollback downgrade status history diff-config recover clean fleet help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and __fish_seen_subcommand_from history" -f -a "show" -d 'One run with all its steps'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "status" -d 'The group read from etcd: slots and their holders (node, target, run, versions, since), the halt, each node\'s installed version and last plan and run, each version\'s canary state. Needs no root'
complete -c upkeep -n "__fish_upkeep_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "resume" -d 'Lift the group\'s halt, clear every bad-version mark and forget slots whose run died (after an operator\'s look). Changes the group\'s state in etcd only, nothing on this host'
