//! `codex-as pin NAME` / `codex-as pin --unset`: this folder's `.codex-account`. NAME is
//! one name, a list (`work,personal`, also `work, personal` as two words) or `auto`.

use anyhow::Context;

use crate::account::pin_file::{self, Removed};
use crate::account::spec::AccountSpec;
use crate::account::{Accounts, directory};
use crate::cli::PinArgs;
use crate::error::{UsageError, status};

pub fn run(args: PinArgs) -> anyhow::Result<u8> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let accounts = Accounts::load()?;
    if args.unset || args.name.is_empty() {
        return match pin_file::remove(&here)? {
            Removed::Removed(pin) => {
                crate::outln!("removed {} (it named '{}')", pin.path.display(), pin.spec)?;
                let now = directory::for_directory(&here, &accounts)?;
                crate::outln!("this folder now uses '{}': {}", now.label(), now.why)?;
                Ok(status::OK)
            }
            Removed::NoFile => {
                let now = directory::for_directory(&here, &accounts)?;
                let hint = match now.why.file() {
                    Some(f) => format!(
                        "; this folder's account '{}' comes from {}",
                        now.label(),
                        f.display()
                    ),
                    None => String::new(),
                };
                Err(UsageError::new(format!(
                    "there is no {} in {}{hint}",
                    pin_file::FILE_NAME,
                    here.display()
                ))
                .into())
            }
        };
    }
    let spec = spec_of(&args.name)?;
    // Pinning a name this machine does not know would only move the error to the next run.
    for name in spec.names() {
        accounts.require(name)?;
    }
    let path = pin_file::write(&here, &spec)?;
    crate::outln!("{} now names '{spec}'", path.display())?;
    let now = directory::for_directory(&here, &accounts)?;
    if now.spec != spec {
        eprintln!(
            "codex-as: note: commands here still run as '{}': {}",
            now.label(),
            now.why
        );
    }
    Ok(status::OK)
}

/// The words after `pin`, as one spec: `work, personal` arrives as two words.
fn spec_of(words: &[String]) -> Result<AccountSpec, UsageError> {
    let text = words.join(" ");
    if words.len() > 1 && !text.contains(',') {
        return Err(UsageError::new(format!(
            "give one account, or a list separated by commas: `codex-as pin {}`",
            words.join(",")
        )));
    }
    AccountSpec::parse(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_list_may_come_as_one_word_or_several() {
        let list = AccountSpec::List(vec!["work".into(), "personal".into()]);
        for w in [
            &["work,personal"][..],
            &["work,", "personal"],
            &["work", ",personal"],
            &["work, personal"],
        ] {
            assert_eq!(spec_of(&words(w)).unwrap(), list, "{w:?}");
        }
        assert_eq!(spec_of(&words(&["auto"])).unwrap(), AccountSpec::Auto);
        let e = spec_of(&words(&["work", "personal"])).unwrap_err();
        assert!(e.0.contains("`codex-as pin work,personal`"), "{}", e.0);
        assert!(spec_of(&words(&["work,", ",personal"])).is_err());
    }
}
