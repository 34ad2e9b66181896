//! The training progress bar (indicatif): epoch, loss, images/s and ETA on stderr; hidden when
//! stderr is not a terminal (logs, CI) or when the caller asks for no bar.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw the progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Draw on stderr when it is a terminal.
    #[default]
    Auto,
    /// Never draw.
    Hidden,
}

pub(crate) fn training_bar(mode: ProgressMode, steps: u64) -> ProgressBar {
    let target = match mode {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressDrawTarget::stderr(),
        _ => ProgressDrawTarget::hidden(),
    };
    let bar = ProgressBar::with_draw_target(Some(steps), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}  ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}
