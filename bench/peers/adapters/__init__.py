"""One adapter per library, each run inside that library's own virtualenv."""
