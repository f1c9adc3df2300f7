//! `codex-as env NAME` and `codex-as use NAME`: shell code that gives the shell evaluating it an
//! account's environment.

use crate::account::Accounts;
use crate::account::env::EnvPlan;
use crate::error::UsageError;

use super::Shell;

/// Shell code that applies `plan` to the shell that evaluates it.
pub fn render(plan: &EnvPlan, shell: Shell) -> Result<String, UsageError> {
    let mut out = String::new();
    for name in &plan.unset {
        match shell {
            Shell::Fish => out.push_str(&format!("set -e {name};\n")),
            _ => out.push_str(&format!("unset {name};\n")),
        }
    }
    for (name, value) in &plan.set {
        let value = value.to_str().ok_or_else(|| {
            UsageError::new(format!(
                "{name} would not be valid UTF-8; shells cannot be given it safely (rename the folder)"
            ))
        })?;
        match shell {
            Shell::Fish => out.push_str(&format!("set -gx {name} {};\n", shell.quote(value))),
            _ => out.push_str(&format!("export {name}={};\n", shell.quote(value))),
        }
    }
    Ok(out)
}

/// The code that switches `shell` to the account `name` (its home must exist).
pub fn for_account(name: &str, shell: Shell) -> anyhow::Result<String> {
    let accounts = Accounts::load()?;
    let account = accounts.require(name)?;
    Ok(render(&EnvPlan::for_account(&account), shell)?)
}
