//! systemd `Type=notify` and watchdog messages, through sd-notify.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset: a terminal, a container, tests) every
//! call is a no-op, so the daemon calls these unconditionally.

use std::io;
use std::time::Duration;

use sd_notify::NotifyState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` once. The
    /// variables stay set: sd-notify reads the socket path again on every send.
    pub fn from_env() -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let mut usec = 0u64;
        // WATCHDOG_PID guards against a child inheriting our watchdog and pinging it.
        let watchdog = (sd_notify::watchdog_enabled(false, &mut usec) && usec > 0)
            .then(|| Duration::from_micros(usec));
        Notifier { enabled, watchdog }
    }

    /// A notifier that never sends anything.
    pub fn disabled() -> Self {
        Notifier {
            enabled: false,
            watchdog: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Startup finished: systemd marks the unit active and starts its dependents.
    pub fn ready(&self) -> io::Result<()> {
        self.send(&[NotifyState::Ready])
    }

    /// Shutdown began; systemd waits up to TimeoutStopSec while calls are finalised.
    pub fn stopping(&self) -> io::Result<()> {
        self.send(&[NotifyState::Stopping])
    }

    /// One line for `systemctl status`. Newlines would start a new assignment in
    /// the protocol, so they are replaced by spaces.
    pub fn status(&self, text: &str) -> io::Result<()> {
        if text.contains('\n') {
            let one_line = text.replace('\n', " ");
            self.send(&[NotifyState::Status(&one_line)])
        } else {
            self.send(&[NotifyState::Status(text)])
        }
    }

    /// Watchdog keep-alive. Send it from the loop whose hang should restart the
    /// service, every [`Notifier::watchdog_interval`].
    pub fn watchdog(&self) -> io::Result<()> {
        self.send(&[NotifyState::Watchdog])
    }

    /// How often to call [`Notifier::watchdog`]: half of WatchdogSec, as sd_watchdog_enabled(3)
    /// recommends. `None` when systemd runs no watchdog for this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    fn send(&self, states: &[NotifyState<'_>]) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        sd_notify::notify(false, states)
    }
}
