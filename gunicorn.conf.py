"""gunicorn settings every `gunicorn alphapulse.wsgi` run here picks up (gunicorn reads
./gunicorn.conf.py by default): its own 400/414/431 answers as JSON."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alphapulse.gunicorn_errors import install

install()
