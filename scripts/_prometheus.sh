# Sourced by scripts/test.sh: Prometheus and its Pushgateway, from the system's packages, for the metrics tests
# (the fixtures start them on loopback ports). Installed with apt when missing.
if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/prometheus-pushgateway ]; then
  if [ "$(id -u)" -eq 0 ]; then apt_get="apt-get"; elif sudo -n true 2>/dev/null; then apt_get="sudo -n apt-get"
  else echo "The metrics tests need prometheus and prometheus-pushgateway: install Debian's packages (as root)" >&2; exit 1; fi
  echo "Installing Prometheus and its Pushgateway for the metrics tests (apt-get install prometheus prometheus-pushgateway)..."
  $apt_get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq prometheus prometheus-pushgateway >/dev/null
fi
