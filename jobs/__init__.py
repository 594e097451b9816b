"""One module per study. Each defines `JOB` (a `library.train.Job`) and runs alone: `python jobs/NAME.py --help`."""
