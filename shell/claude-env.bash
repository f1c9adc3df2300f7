# codex-as: this Claude Code session's Codex account ({{ why_q }}). Rewritten by `codex-as claude hook` at every session start and folder change.
{% for (name, value_q) in exports -%}
export {{ name }}={{ value_q }}
{% endfor -%}
{% if !unsets.is_empty() -%}
unset {{ unsets.join(" ") }}
{% endif -%}
