# upkeep %preun: on erase ($1 = 0, not on upgrade), disable and stop the
# timers, and stop the services. /etc/upkeep and /var/lib/upkeep are kept
# (the package does not own them); an edited /etc/upkeep/upkeep.toml is
# kept by rpm as upkeep.toml.rpmsave.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --system --no-reload disable --now upkeep-check.timer upkeep-upgrade.timer >/dev/null 2>&1 || :
    systemctl --system stop upkeep-check.service upkeep-upgrade.service >/dev/null 2>&1 || :
fi
