# dragonfarm: the NVIDIA driver, Canonical-signed so it loads with secure boot on (Azure "Install NVIDIA GPU drivers
# on N-series VMs running Linux": Ubuntu, `ubuntu-drivers install`, then reboot). Runs after the idle watcher is in
# place, so a box whose driver install fails still stops when idle. Needs outbound internet (the fence's NAT).
if ! command -v nvidia-smi >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # The image's own unattended upgrades may hold the package lock at first boot: every apt run here (ubuntu-drivers
    # included) waits for it rather than failing once.
    echo 'DPkg::Lock::Timeout "900";' > /etc/apt/apt.conf.d/50dragonfarm-lock-wait
    apt-get update -q && apt-get install -y -q ubuntu-drivers-common && ubuntu-drivers install && systemctl reboot
fi
