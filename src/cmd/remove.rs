use crate::account::config::ConfigEdit;
use crate::account::{self, AccountError, Accounts};
use crate::cli::NameArg;
use crate::error::status;

pub fn run(args: NameArg) -> anyhow::Result<u8> {
    account::check_name(&args.name)?;
    let accounts = Accounts::load()?;
    let mut edit = ConfigEdit::open(&accounts.config_path)?;
    if !edit.remove_account(&args.name) {
        let conv = accounts.convention_home(&args.name);
        return Err(AccountError::NotConfigured {
            name: args.name,
            convention_home: conv.is_dir().then_some(conv),
        }
        .into());
    }
    edit.save()?;
    println!(
        "removed '{}' from the config; its home folder is untouched",
        args.name
    );
    let conv = accounts.convention_home(&args.name);
    if conv.is_dir() {
        eprintln!(
            "codex-as: note: {} still exists, so '{}' remains an account by convention",
            conv.display(),
            args.name
        );
    }
    Ok(status::OK)
}
