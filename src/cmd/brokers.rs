//! `codex-as brokers [list|stop] [--json]`: the brokers that keep accounts warm, and stopping
//! codex-as's own ones without ever interrupting work (`broker::report`).

use crate::account::Accounts;
use crate::broker::registry::Registry;
use crate::broker::report::{self, Row};
use crate::cli::{BrokersAction, BrokersArgs};
use crate::error::status;
use crate::shell::quote;
use crate::sys::clock;
use crate::sys::table::{Column, Table};

pub fn run(args: BrokersArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let reg = Registry::open()?;
    let runtime = crate::sys::runtime::current_thread()?;
    match args.action.unwrap_or(BrokersAction::List) {
        BrokersAction::List => {
            let rows = runtime.block_on(report::list(&reg, &accounts));
            print_rows(&rows, args.json, "no brokers")?;
        }
        BrokersAction::Stop(stop) => {
            let rows = runtime.block_on(report::stop(&reg, &accounts, stop.all, stop.timeout));
            print_rows(&rows, args.json, "no codex-as brokers to stop")?;
            let left = rows.iter().filter(|r| r.state.left_running()).count();
            // `--all` promised to stop everything of ours: say so when it could not.
            if stop.all && left > 0 {
                eprintln!(
                    "codex-as: {left} broker(s) still running (busy past --timeout, or not answering); nothing was interrupted"
                );
                return Ok(status::FAILURE);
            }
        }
    }
    Ok(status::OK)
}

/// A fixed layout (the narrowest widths fit the usual values), one space apart but for the
/// workspaces.
const COLUMNS: [Column; 9] = [
    Column::new("OWNER").min_width(9),
    Column::new("ACCOUNT").min_width(12).gap(1),
    Column::new("STATE").min_width(12).gap(1),
    Column::new("PID").right().min_width(8).gap(1),
    Column::new("CLIENTS").right().min_width(7).gap(1),
    Column::new("THREADS").right().min_width(7).gap(1),
    Column::new("AGE").right().min_width(6).gap(1),
    Column::new("IDLE").right().min_width(6).gap(1),
    Column::new("WORKSPACES"),
];

fn print_rows(rows: &[Row], json: bool, empty: &str) -> anyhow::Result<()> {
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        crate::outln!("{empty}")?;
        return Ok(());
    }
    let dash = || "-".to_string();
    let secs = |s: Option<u64>| s.map_or_else(dash, |s| clock::human_duration(s as i64));
    let count = |n: Option<u64>| n.map_or_else(dash, |n| n.to_string());
    let mut table = Table::new(&COLUMNS);
    for r in rows {
        let served: Vec<String> = r.served().into_iter().map(quote::for_terminal).collect();
        table.row(vec![
            r.owner.to_string(),
            r.account.as_deref().unwrap_or("?").to_string(),
            r.state.name().to_string(),
            r.pid.map_or_else(dash, |p| p.to_string()),
            count(r.clients),
            count(r.threads_in_flight),
            secs(r.age_seconds),
            secs(r.idle_seconds),
            if served.is_empty() {
                dash()
            } else {
                served.join(" ")
            },
        ]);
        if let Some(served) = &r.app_server_words {
            table.note(format!("          app-server: {served}"));
        }
        if let Some(note) = &r.note {
            table.note(format!("          {note}"));
        }
        if let Some(root) = &r.state_root {
            table.note(format!(
                "          found under {} ({})",
                quote::for_terminal(&root.path),
                root.origin.describe()
            ));
        }
    }
    crate::out!("{}", table.render(None))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widths and alignments `brokers` always had, for values that fit them.
    #[test]
    fn values_that_fit_keep_the_fixed_layout() {
        let row = [
            "codex-as",
            "alice",
            "stale-login",
            "123456",
            "3",
            "1",
            "2h5m",
            "0s",
            "/w",
        ];
        let mut table = Table::new(&COLUMNS);
        table.row(row.iter().map(|c| c.to_string()).collect());
        table.note("          a note".into());
        let line = |c: [&str; 9]| {
            format!(
                "{:<9} {:<12} {:<12} {:>8} {:>7} {:>7} {:>6} {:>6}  {}\n",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
            )
        };
        let headers = COLUMNS.map(|c| c.header);
        assert_eq!(
            table.render(None),
            line(headers) + &line(row) + "          a note\n"
        );
    }
}
