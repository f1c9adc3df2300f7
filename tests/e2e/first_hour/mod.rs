//! A user's first hour (issue 13): `doctor`, `help`, the companion's `--help` and advice, a
//! turn refused on a logged-out account, `use` and `use --unset` in real shells, the config
//! checked as a whole, a closed stdout, the identity variables of Codex 0.171, an aborted login.

mod closed_pipe;
mod companion;
mod config_check;
mod doctor;
mod help;
mod home_file;
mod identity_vars;
mod login_abort;
mod shell_use;
mod unknown_word;
