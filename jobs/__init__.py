"""Background work: collection, enrichment, escalation sweeps, reports and retention as jobs.

Two ways to run it, one set of job functions (:mod:`listenwell.jobs.work`):

- **PostgreSQL (teams):** the jobs go through Procrastinate, a task queue kept
  in the same PostgreSQL database (:mod:`listenwell.jobs.queue`). Any number of
  ``listenwell worker`` processes on any number of machines share it. A worker
  killed mid-job (even with SIGKILL) stops sending heartbeats; another worker
  gives its job back to the queue, and because every job only processes what is
  still pending and writes idempotently, the retry neither loses nor repeats work.
- **SQLite (the embedded default):** ``listenwell worker`` runs the same jobs
  on a timer in one process (:mod:`listenwell.jobs.local`), with no extra setup.
"""
