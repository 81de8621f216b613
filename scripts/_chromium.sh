# Sourced by scripts/test.sh: the browser the UI tests drive (Debian's Chromium; Playwright's own browser
# download cannot run on these machines). Installed with apt when missing.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then apt_get="apt-get"; elif sudo -n true 2>/dev/null; then apt_get="sudo -n apt-get"
  else echo "The UI tests need Chromium at /usr/bin/chromium: install Debian's chromium package (as root)" >&2; exit 1; fi
  echo "Installing Chromium for the UI tests (apt-get install chromium)..."
  $apt_get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq chromium >/dev/null
fi
