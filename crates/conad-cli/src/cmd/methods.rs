//! `conad methods`: the method registry (names, aliases, one-line summaries).
use anyhow::Result;
use conad_train::METHODS;

pub fn run() -> Result<()> {
    for m in METHODS {
        let aliases = if m.aliases.is_empty() {
            String::new()
        } else {
            format!(" (alias: {})", m.aliases.join(", "))
        };
        println!("{:<12} {}{aliases}", m.name, m.summary);
    }
    Ok(())
}
