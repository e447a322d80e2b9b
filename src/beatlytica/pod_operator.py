"""The pod tasks' operator on Kubernetes: KubernetesPodOperator from the image's pod template,
with one clear error when the template is not where the settings say (imported only when
BEATLYTICA_RUNTIME=kubernetes: it imports the Kubernetes provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException


class BeatlyticaPodOperator(KubernetesPodOperator):
    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> Any:
        template = Path(self.pod_template_file or "")
        if not template.is_file():
            raise AirflowException(
                f"no pod template {template}: BEATLYTICA_POD_TEMPLATE_DIR must hold the chart's "
                "ConfigMap beatlytica-pod-templates (the platform chart mounts it into the "
                "scheduler; outside the cluster: kubectl get configmap beatlytica-pod-templates)"
            )
        return super().build_pod_request_obj(context, dry_run=dry_run)
