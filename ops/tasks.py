"""The tasks of the job queue (the labels of the ``job_type`` enum, Panoramax's and ops's alike), in one
place: the CLI's choices, ``ops health``'s series and the reports all read them here. A test compares them
with the enum of both kinds of database."""

TASKS = ("prepare", "delete", "dispatch", "finalize", "read_metadata", "transfer")
