# The local cluster: a real one-node Kubernetes built on this machine (k8s/local/README.md),
# included by the Makefile (which defines VENV, BIN, HELM, IMAGE_TAG and `setup`).
#
#   make cluster-up       build (once, cached by version) and start it; idempotent
#   make cluster-down     stop every process it started and remove what it added
#   make cluster-images   the six images of images/Dockerfile (stand-in bases), into the node
#   make cluster-deploy   CRDs, namespaces, Kafka, `helm install` of charts/beatlytica
#   make cluster-test     all of the above if needed, then tests/cluster and tests/e2e
#                         (BEATLYTICA_E2E_CLUSTER=local); the cluster stays up

include k8s/local/versions.env

LOCAL := k8s/local
CLUSTER_KUBECONFIG := $(CURDIR)/.beatlytica/cluster/kubeconfig

.PHONY: cluster-up cluster-down cluster-status cluster-images cluster-deploy cluster-test

cluster-up: ## start the local one-node Kubernetes (k8s/local/); builds it once
	bash $(LOCAL)/cluster.sh up

cluster-down: ## stop the local cluster and remove everything it added
	bash $(LOCAL)/cluster.sh down

cluster-status: ## the local cluster's processes and node
	bash $(LOCAL)/cluster.sh status

cluster-images: cluster-up ## build the images (stand-in bases) and import them into the local cluster
	BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG) bash $(LOCAL)/images.sh project
	BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG) bash $(LOCAL)/images.sh import-project

cluster-deploy: setup $(HELM) cluster-images ## install charts/beatlytica on the local cluster
	KUBECONFIG=$(CLUSTER_KUBECONFIG) BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG) HELM=$(CURDIR)/$(HELM) \
		PYTHON=$(CURDIR)/$(BIN)/python bash $(LOCAL)/deploy.sh

cluster-test: cluster-deploy ## tests/cluster and tests/e2e on the local cluster; it stays up
	BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG) HELM=$(CURDIR)/$(HELM) \
		BEATLYTICA_E2E=1 BEATLYTICA_E2E_CLUSTER=local KUBECONFIG=$(CLUSTER_KUBECONFIG) \
		PATH="$(CURDIR)/.beatlytica/cluster/bin:$$PATH" $(BIN)/pytest tests/cluster tests/e2e
