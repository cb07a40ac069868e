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
# On the first install ($1 = 1) the timers are set as the preset policy
# says, as %systemd_post does: the package's own presets
# (/usr/lib/systemd/system-preset/80-upkeep.preset: the daily check on, like
# apt-daily.timer on Debian; upkeep-upgrade.timer off, it is opt-in) unless
# a preset file of the administrator or the distribution that sorts first
# says otherwise. An enabled check timer is started (only the timer: the
# check itself runs when it fires). On upgrades the timers stay as the
# operator set them.
if [ "$1" -eq 1 ]; then
    systemctl --system --no-reload preset upkeep-check.timer upkeep-upgrade.timer >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ] && systemctl --system --quiet is-enabled upkeep-check.timer 2>/dev/null; then
        systemctl --system start upkeep-check.timer >/dev/null 2>&1 || :
    fi
fi
