"""The database schema of ops: migration and view files, the bookkeeping, the yoyo adapter, status and the
guard commands call first, and the runner (upgrade, rollback).

Modules, in the order they depend on each other (none imports a later one):
``files`` (what is on disk) → ``bookkeeping`` (what the database records) → ``status`` (the two compared;
the guard) → ``yoyo_adapter`` (everything yoyo) → ``migrations`` (plans and running them) and ``views``
(materialized views kept in sync) → ``runner`` (the lock, then migrations, then views).
"""
