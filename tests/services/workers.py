"""A worker process for service tests that claim and complete jobs without a Celery worker."""

from __future__ import annotations

import os
import uuid

from sojourn.services.workers import WorkerProcess
from sojourn.settings import RecoverySettings

TEST_WORKER = WorkerProcess(name="test-node", incarnation=uuid.UUID(int=1), pid=os.getpid())
RECOVERY = RecoverySettings()
FIRST_ATTEMPT = 1  # what `complete_job` is told after one claim
