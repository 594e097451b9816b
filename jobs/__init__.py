"""One module per study. Each defines `JOB`, its `library.job.Job` subclass, and runs alone: `python jobs/NAME.py --help`."""
