"""Technician serial console (issue 9): ``storeedge console --port URL --config FILE``.

Modules: ``lineedit`` (bytes-fed line editor), ``parser``/``commands`` (command table with
prefix abbreviations), ``session`` (login, lockout, idle timeout), ``auth``/``secret`` (scrypt
hash, back-off), ``store`` (versioned, atomic config store), ``candidate``/``schema``/``manager``
(candidate config, strict validation, commit / commit confirmed / rollback), ``targets``
(device-kind adapters), ``console`` (port loop, ``serve_port``), ``embed`` (console inside an
app's process), ``main`` (CLI), ``events`` (event types), ``exc`` (exceptions).
"""
