"""rliable-based statistical reports in HTML and PDF answering the referee's questions.
Filled in by the reports issue."""
