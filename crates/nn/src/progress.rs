//! A progress bar for long loops on stderr: steps done, steps/s, time left and a message
//! (the running loss, say), redrawn in place at most ten times a second. It draws only when
//! stderr is a terminal, so logs, pipes and CI output never fill with `\r` lines; [`fit`]
//! shows one within each epoch.
//!
//! [`fit`]: crate::train::fit

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the bar is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);
/// Width of the bar itself, in characters.
const BAR: usize = 24;

/// A progress bar over `total` steps.
///
/// ```
/// use wengert_nn::progress::ProgressBar;
/// let mut bar = ProgressBar::new("epoch 1/3", 100);
/// for step in 0..100 {
///     // ... one training step ...
///     bar.inc(1, || format!("loss {:.4}", 1.0 / (step + 1) as f64));
/// }
/// bar.finish(); // clears the line (nothing was drawn if stderr is not a terminal)
/// ```
pub struct ProgressBar {
    label: String,
    total: usize,
    done: usize,
    start: Instant,
    last_draw: Option<Instant>,
    visible: bool,
}

impl ProgressBar {
    /// A bar labelled `label` over `total` steps, drawn only if stderr is a terminal.
    ///
    /// ```
    /// use std::io::IsTerminal;
    /// use wengert_nn::progress::ProgressBar;
    /// let bar = ProgressBar::new("epoch 1/3", 100);
    /// assert_eq!(bar.is_visible(), std::io::stderr().is_terminal()); // hidden when stderr is a pipe or a log
    /// assert_eq!(bar.done(), 0);
    /// ```
    pub fn new(label: impl Into<String>, total: usize) -> Self {
        Self::with_visibility(label, total, std::io::stderr().is_terminal())
    }

    /// A bar that never draws (its counts and [`ProgressBar::line`] still work).
    ///
    /// ```
    /// let bar = wengert_nn::progress::ProgressBar::hidden("eval", 10);
    /// assert!(!bar.is_visible());
    /// ```
    pub fn hidden(label: impl Into<String>, total: usize) -> Self {
        Self::with_visibility(label, total, false)
    }

    fn with_visibility(label: impl Into<String>, total: usize, visible: bool) -> Self {
        ProgressBar { label: label.into(), total, done: 0, start: Instant::now(), last_draw: None, visible }
    }

    /// Whether the bar draws on stderr.
    ///
    /// ```
    /// use std::io::IsTerminal;
    /// use wengert_nn::progress::ProgressBar;
    /// assert!(!ProgressBar::hidden("eval", 10).is_visible());
    /// assert_eq!(ProgressBar::new("train", 10).is_visible(), std::io::stderr().is_terminal());
    /// ```
    pub fn is_visible(&self) -> bool {
        self.visible
    }

    /// Steps done so far.
    ///
    /// ```
    /// let mut bar = wengert_nn::progress::ProgressBar::hidden("x", 10);
    /// bar.inc(3, String::new);
    /// assert_eq!(bar.done(), 3);
    /// ```
    pub fn done(&self) -> usize {
        self.done
    }

    /// Marks `n` more steps done and redraws (if visible and the last draw is 100 ms old,
    /// or this is the last step) with `message()` after the counts; the message is only
    /// built when the bar draws.
    ///
    /// ```
    /// use wengert_nn::progress::ProgressBar;
    /// let mut bar = ProgressBar::hidden("epoch 1/1", 10);
    /// let mut built = 0;
    /// for _ in 0..4 {
    ///     bar.inc(2, || { built += 1; "loss 0.1" });
    /// }
    /// assert_eq!(bar.done(), 8);
    /// assert_eq!(built, 0); // a hidden bar never draws, so never builds its message
    /// ```
    pub fn inc<S: Into<String>>(&mut self, n: usize, message: impl FnOnce() -> S) {
        self.done += n;
        if !self.visible {
            return;
        }
        let now = Instant::now();
        let due = self.last_draw.is_none_or(|t| now - t >= REDRAW) || self.done >= self.total;
        if due {
            self.last_draw = Some(now);
            let line = self.line(now - self.start, &message().into());
            let mut err = std::io::stderr().lock();
            // a failed write to stderr is not worth failing the training for
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
        }
    }

    /// Clears the bar's line (if it drew), so the next output starts on a clean line.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wengert_nn::progress::ProgressBar;
    /// let mut bar = ProgressBar::hidden("epoch 1/1", 4);
    /// bar.inc(4, String::new);
    /// bar.finish(); // nothing was drawn, so nothing is cleared; the counts stay
    /// assert_eq!(bar.done(), 4);
    /// assert!(bar.line(Duration::from_secs(2), "").starts_with("epoch 1/1 [########################] 4/4"));
    /// ```
    pub fn finish(&mut self) {
        if self.visible && self.last_draw.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        self.last_draw = None;
    }

    /// The text of the bar after `elapsed`: label, bar, `done/total`, steps/s, time left
    /// (from the mean rate so far) and the message.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut bar = wengert_nn::progress::ProgressBar::hidden("epoch 1/2", 100);
    /// bar.inc(25, String::new);
    /// let line = bar.line(Duration::from_secs(5), "loss 0.5");
    /// assert_eq!(line, "epoch 1/2 [######------------------] 25/100  5.0 steps/s  ETA 0:15  loss 0.5");
    /// ```
    pub fn line(&self, elapsed: Duration, message: &str) -> String {
        let frac = if self.total == 0 { 1.0 } else { (self.done as f64 / self.total as f64).min(1.0) };
        let filled = (frac * BAR as f64).round() as usize;
        let bar: String = "#".repeat(filled) + &"-".repeat(BAR - filled);
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { self.done as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 { clock(self.total.saturating_sub(self.done) as f64 / rate) } else { "?".into() };
        let mut line = format!("{} [{bar}] {}/{}  {rate:.1} steps/s  ETA {eta}", self.label, self.done, self.total);
        if !message.is_empty() {
            line += "  ";
            line += message;
        }
        line
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Seconds as `m:ss` (or `h:mm:ss` from an hour).
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts_rate_and_time_left() {
        let mut bar = ProgressBar::hidden("e", 10);
        assert_eq!(bar.line(Duration::ZERO, ""), "e [------------------------] 0/10  0.0 steps/s  ETA ?");
        bar.inc(10, || "unused");
        assert_eq!(bar.line(Duration::from_secs(2), "loss 1"), "e [########################] 10/10  5.0 steps/s  ETA 0:00  loss 1");
        let mut long = ProgressBar::hidden("e", 10_000);
        long.inc(1, String::new);
        assert!(long.line(Duration::from_secs(1), "").ends_with("ETA 2:46:39"), "{}", long.line(Duration::from_secs(1), ""));
    }

    #[test]
    fn a_hidden_bar_never_builds_its_message() {
        let mut bar = ProgressBar::hidden("e", 3);
        bar.inc(1, || -> String { panic!("the message of a hidden bar is not built") });
        assert_eq!(bar.done(), 1);
    }
}
