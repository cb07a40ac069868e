# upkeep %post. The directories are made here, not owned by the package, so
# that erasing it never touches the history and backups in /var/lib/upkeep
# or the operator's files in /etc/upkeep.
[ -d /var/lib/upkeep ] || install -d -m 0700 /var/lib/upkeep
[ -d /var/cache/upkeep ] || install -d -m 0755 /var/cache/upkeep
[ -d /etc/upkeep/conf.d ] || install -d -m 0755 /etc/upkeep/conf.d
[ -d /etc/upkeep/keys ] || install -d -m 0755 /etc/upkeep/keys
# The units may be new or changed.
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
# On the first install ($1 = 1) the daily check is enabled and started, like
# apt-daily.timer on Debian (only the timer: the check itself runs when it
# fires). On upgrades the timers stay as the operator set them.
# upkeep-upgrade.timer is opt-in, neither enabled nor started.
if [ "$1" -eq 1 ]; then
    systemctl --system enable upkeep-check.timer >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl --system start upkeep-check.timer >/dev/null 2>&1 || :
    fi
fi
