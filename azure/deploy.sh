#!/usr/bin/env bash
# Deploy hera-sessions to Azure with the az CLI: storage, Redis, Key Vault, the function app, Event Grid.
#
#   CORS_ALLOWED_ORIGINS=https://app.example.com azure/deploy.sh
#
# Idempotent: run it again to update the code or the settings (existing secrets are kept). Names get a short
# suffix derived from the subscription and resource group, so they are the same on every run and unique in Azure.
# Settings (environment variables, all optional except CORS_ALLOWED_ORIGINS):
#   RESOURCE_GROUP (hera-sessions)   LOCATION (japaneast)   NAME (hera)   CONTAINER (hera-sessions)
#   PYTHON_VERSION (3.13)            REDIS_SKU (Balanced_B0)
#   REDIS_URL        an existing Redis (rediss://...) instead of creating Azure Managed Redis
#   DEPLOYER_OBJECT_ID  who may write the Key Vault secrets (default: the signed-in user)
#   PYTHON           the interpreter with hera_sessions installed (.venv/bin/python)
#   EVENT_MAX_ATTEMPTS  deliveries of a blob event before it is dead-lettered (30, Event Grid's most)
#   ALERT_ACTION_GROUP  an action group (resource id) the dead-letter alert notifies (none: the portal shows it)
#   DRY_RUN=1        print every az command that would change something, run none (queries answer placeholders)
# See docs/azure.md for what is created and how to check it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
: "${CORS_ALLOWED_ORIGINS:?set CORS_ALLOWED_ORIGINS to the web app origins, e.g. https://app.example.com}"
RESOURCE_GROUP="${RESOURCE_GROUP:-hera-sessions}"
LOCATION="${LOCATION:-japaneast}"
NAME="${NAME:-hera}"
CONTAINER="${CONTAINER:-hera-sessions}"
PYTHON_VERSION="${PYTHON_VERSION:-3.13}"
REDIS_SKU="${REDIS_SKU:-Balanced_B0}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
EVENT_MAX_ATTEMPTS="${EVENT_MAX_ATTEMPTS:-30}"
ALERT_ACTION_GROUP="${ALERT_ACTION_GROUP:-}"
EXPIRE_AFTER_DAYS=7
DEAD_LETTERS="${CONTAINER}-dead-letters"  # the container that keeps the events the function failed for good

log() { printf '\n== %s\n' "$*" >&2; }

# DRY_RUN=1: az prints instead of running. A command that changes something is printed on stdout; a look-up is
# printed on stderr and answers a placeholder (`show` without --query answers "not there", so every create is
# shown); secret values are read from stdin or files and never printed. Nothing but the code zip is made locally.
DRY_RUN="${DRY_RUN:-}"
if [[ -n "$DRY_RUN" ]]; then
  az() {
    local arg query=""
    for arg in "$@"; do [[ "$query" == "next" ]] && query="$arg"; [[ "$arg" == "--query" ]] && query="next"; done
    if [[ -n "$query" || " $* " == *" list "* || " $* " == *" show "* || " $* " == *" list-keys "* ]]; then
      printf '+ (query) az' >&2
      printf ' %q' "$@" >&2
      printf '\n' >&2
      if [[ -z "$query" ]]; then return 1; fi  # an existence check: not there, so the create is shown
      printf 'DRY-RUN-%s\n' "${query//[^A-Za-z0-9]/-}"
      return 0
    fi
    printf '+ az'
    printf ' %q' "$@"
    printf '\n'
    if [[ -p /dev/stdin ]]; then cat >/dev/null; fi
  }
fi

# Retry a command (role assignments and newly indexed functions take a while to be seen).
retry() {
  local tries=$1 pause=$2
  shift 2
  for ((i = 1; ; i++)); do
    "$@" && return 0
    ((i >= tries)) && return 1
    sleep "$pause"
  done
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log "Subscription and names"
SUBSCRIPTION_ID="$(az account show --query id -o tsv)"
SUFFIX="$(printf '%s/%s' "$SUBSCRIPTION_ID" "$RESOURCE_GROUP" | sha256sum | cut -c1-6)"
DATA_ACCOUNT="${NAME}data${SUFFIX}"   # the session files (3-24 lowercase letters and digits)
HOST_ACCOUNT="${NAME}host${SUFFIX}"   # the function app's own storage (deployments, host state)
VAULT="${NAME}-kv-${SUFFIX}"
REDIS="${NAME}-redis-${SUFFIX}"
APP="${NAME}-sessions-${SUFFIX}"
echo "resource group $RESOURCE_GROUP, storage $DATA_ACCOUNT, vault $VAULT, function app $APP" >&2

az group create --name "$RESOURCE_GROUP" --location "$LOCATION" -o none
for namespace in Microsoft.Storage Microsoft.Web Microsoft.KeyVault Microsoft.Cache Microsoft.EventGrid \
  Microsoft.Insights; do
  az provider register --namespace "$namespace" --wait -o none
done

log "Storage account for the session files: private, HTTPS only, no account keys (user delegation SAS only)"
az storage account create --name "$DATA_ACCOUNT" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
  --sku Standard_LRS --kind StorageV2 --https-only true --min-tls-version TLS1_2 \
  --allow-blob-public-access false --allow-shared-key-access false -o none
DATA_ID="$(az storage account show --name "$DATA_ACCOUNT" --resource-group "$RESOURCE_GROUP" --query id -o tsv)"
az storage container-rm create --storage-account "$DATA_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
  --name "$CONTAINER" --public-access off -o none

log "CORS on the Blob service, from CORS_ALLOWED_ORIGINS (the same rule the tests give Azurite)"
"$PYTHON" -m hera_sessions.http.cors azure --origins "$CORS_ALLOWED_ORIGINS" > "$WORK/cors-rule.json"
"$PYTHON" - "$WORK/cors-rule.json" > "$WORK/blob-service.json" <<'PY'
import json, sys
rule = json.load(open(sys.argv[1]))
arm = {
    "allowedOrigins": rule["allowed_origins"],
    "allowedMethods": rule["allowed_methods"],
    "allowedHeaders": rule["allowed_headers"],
    "exposedHeaders": rule["exposed_headers"],
    "maxAgeInSeconds": rule["max_age_in_seconds"],
}
print(json.dumps({"properties": {"cors": {"corsRules": [arm]}}}))
PY
az rest --method put --url "https://management.azure.com${DATA_ID}/blobServices/default?api-version=2023-05-01" \
  --body "@$WORK/blob-service.json" -o none

log "Lifecycle: delete blobs under sessions/ $EXPIRE_AFTER_DAYS days after their last change"
cat > "$WORK/lifecycle.json" <<JSON
{
  "rules": [
    {
      "enabled": true,
      "name": "expire-sessions",
      "type": "Lifecycle",
      "definition": {
        "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["$CONTAINER/sessions/"]},
        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": $EXPIRE_AFTER_DAYS}}}
      }
    }
  ]
}
JSON
az storage account management-policy create --account-name "$DATA_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
  --policy "@$WORK/lifecycle.json" -o none

log "Key Vault (RBAC) and its secrets"
az keyvault create --name "$VAULT" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
  --enable-rbac-authorization true -o none
VAULT_ID="$(az keyvault show --name "$VAULT" --resource-group "$RESOURCE_GROUP" --query id -o tsv)"
VAULT_URL="https://${VAULT}.vault.azure.net"
DEPLOYER_OBJECT_ID="${DEPLOYER_OBJECT_ID:-$(az ad signed-in-user show --query id -o tsv)}"
az role assignment create --assignee-object-id "$DEPLOYER_OBJECT_ID" --role "Key Vault Secrets Officer" \
  --scope "$VAULT_ID" -o none

set_secret() { az keyvault secret set --vault-name "$VAULT" --name "$1" --file "$2" -o none; }
new_secret() {  # created once, kept on later runs (rotating it would sign everyone out)
  if ! az keyvault secret show --vault-name "$VAULT" --name "$1" -o none 2>/dev/null; then
    "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48), end="")' > "$WORK/$1"
    retry 10 15 set_secret "$1" "$WORK/$1"
  fi
}
new_secret token-secret
new_secret service-api-keys

if [ -z "${REDIS_URL:-}" ]; then
  log "Azure Managed Redis ($REDIS_SKU): TLS on port 10000, access keys on, non-clustered endpoint"
  # Azure Cache for Redis is being retired (no new caches); Azure Managed Redis is its successor.
  if ! az redisenterprise show --cluster-name "$REDIS" --resource-group "$RESOURCE_GROUP" -o none 2>/dev/null; then
    az redisenterprise create --cluster-name "$REDIS" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
      --sku "$REDIS_SKU" --minimum-tls-version 1.2 --public-network-access Enabled --no-database -o none
    az redisenterprise database create --cluster-name "$REDIS" --resource-group "$RESOURCE_GROUP" \
      --client-protocol Encrypted --port 10000 --clustering-policy EnterpriseCluster \
      --eviction-policy NoEviction --access-keys-auth Enabled -o none
  fi
  REDIS_HOST="$(az redisenterprise show --cluster-name "$REDIS" --resource-group "$RESOURCE_GROUP" --query hostName -o tsv)"
  REDIS_KEY="$(az redisenterprise database list-keys --cluster-name "$REDIS" --resource-group "$RESOURCE_GROUP" \
    --query primaryKey -o tsv)"
  REDIS_URL="rediss://:${REDIS_KEY}@${REDIS_HOST}:10000/0"
fi
printf '%s' "$REDIS_URL" > "$WORK/redis-url"
retry 10 15 set_secret redis-url "$WORK/redis-url"

log "Function app (Flex Consumption, Python $PYTHON_VERSION) with a system-assigned managed identity"
az storage account create --name "$HOST_ACCOUNT" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
  --sku Standard_LRS --kind StorageV2 --https-only true --min-tls-version TLS1_2 \
  --allow-blob-public-access false -o none
if ! az functionapp show --name "$APP" --resource-group "$RESOURCE_GROUP" -o none 2>/dev/null; then
  az functionapp create --name "$APP" --resource-group "$RESOURCE_GROUP" --storage-account "$HOST_ACCOUNT" \
    --flexconsumption-location "$LOCATION" --runtime python --runtime-version "$PYTHON_VERSION" -o none
fi
PRINCIPAL_ID="$(az functionapp identity assign --name "$APP" --resource-group "$RESOURCE_GROUP" \
  --query principalId -o tsv)"
APP_ID="$(az functionapp show --name "$APP" --resource-group "$RESOURCE_GROUP" --query id -o tsv)"

log "Least roles for the function's identity"
grant() {  # role, scope
  az role assignment create --assignee-object-id "$PRINCIPAL_ID" --assignee-principal-type ServicePrincipal \
    --role "$1" --scope "$2" -o none
}
# Read, write and delete blobs in the one container (not the account);
grant "Storage Blob Data Contributor" "$DATA_ID/blobServices/default/containers/$CONTAINER"
# ask for user delegation keys (an account-level action, nothing else);
grant "Storage Blob Delegator" "$DATA_ID"
# read the secrets.
grant "Key Vault Secrets User" "$VAULT_ID"

log "Settings (secrets are Key Vault references, resolved by the function itself at start)"
az functionapp config appsettings set --name "$APP" --resource-group "$RESOURCE_GROUP" -o none --settings \
  STORAGE_MODE=cloud CLOUD_STORAGE_TYPE=azure SESSION_TYPE=redis REDIS_CLUSTER=false \
  "AZURE_STORAGE_ACCOUNT_URL=https://${DATA_ACCOUNT}.blob.core.windows.net" \
  "AZURE_CONTAINER_NAME=$CONTAINER" \
  "CORS_ALLOWED_ORIGINS=$CORS_ALLOWED_ORIGINS" \
  "REDIS_URL=$VAULT_URL/secrets/redis-url" \
  "TOKEN_SECRET=$VAULT_URL/secrets/token-secret" \
  "SERVICE_API_KEYS=$VAULT_URL/secrets/service-api-keys"

log "Code: function_app.py, host.json, requirements.txt and the hera_sessions package (remote build)"
mkdir "$WORK/app"
cp "$ROOT/azure/function_app.py" "$ROOT/azure/host.json" "$ROOT/azure/requirements.txt" "$WORK/app/"
cp -R "$ROOT/shared/hera_sessions" "$WORK/app/hera_sessions"
find "$WORK/app" -name __pycache__ -type d -prune -exec rm -rf {} +
(cd "$WORK/app" && "$PYTHON" -m zipfile -c "$WORK/app.zip" function_app.py host.json requirements.txt hera_sessions)
az functionapp deployment source config-zip --name "$APP" --resource-group "$RESOURCE_GROUP" \
  --src "$WORK/app.zip" --build-remote true -o none

log "Event Grid: a system topic for the data account, with a managed identity that writes the dead letters"
# The function raises for an event it cannot use (Redis or storage down, or an event it cannot read: logged with
# the reason): Event Grid retries it, then dead-letters it into a container of the data account. The AWS twin:
# the SQS dead-letter queue and its alarm.
az storage container-rm create --storage-account "$DATA_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
  --name "$DEAD_LETTERS" --public-access off -o none
# An account has one system topic: reuse it (an earlier event subscription may have made one), else create it.
TOPIC="$(az eventgrid system-topic list --resource-group "$RESOURCE_GROUP" \
  --query "[?source=='$DATA_ID'].name | [0]" -o tsv)"
if [ -z "$TOPIC" ]; then
  TOPIC="${NAME}-blobs-${SUFFIX}"
  az eventgrid system-topic create --name "$TOPIC" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
    --topic-type Microsoft.Storage.StorageAccounts --source "$DATA_ID" --identity systemassigned -o none
else
  az eventgrid system-topic update --name "$TOPIC" --resource-group "$RESOURCE_GROUP" --identity systemassigned -o none
fi
TOPIC_ID="$(az eventgrid system-topic show --name "$TOPIC" --resource-group "$RESOURCE_GROUP" --query id -o tsv)"
TOPIC_PRINCIPAL="$(az eventgrid system-topic show --name "$TOPIC" --resource-group "$RESOURCE_GROUP" \
  --query identity.principalId -o tsv)"
# The account takes no keys: the topic's identity writes the dead letters, in that one container only.
az role assignment create --assignee-object-id "$TOPIC_PRINCIPAL" --assignee-principal-type ServicePrincipal \
  --role "Storage Blob Data Contributor" --scope "$DATA_ID/blobServices/default/containers/$DEAD_LETTERS" -o none

log "Event Grid: BlobCreated/BlobDeleted under sessions/ to the storage_events function ($EVENT_MAX_ATTEMPTS tries)"
subscribe() {
  az eventgrid system-topic event-subscription create --name hera-sessions-blobs \
    --resource-group "$RESOURCE_GROUP" --system-topic-name "$TOPIC" \
    --endpoint-type azurefunction --endpoint "$APP_ID/functions/storage_events" \
    --included-event-types Microsoft.Storage.BlobCreated Microsoft.Storage.BlobDeleted \
    --subject-begins-with "/blobServices/default/containers/$CONTAINER/blobs/sessions/" \
    --max-delivery-attempts "$EVENT_MAX_ATTEMPTS" --event-ttl 1440 \
    --deadletter-identity systemassigned \
    --deadletter-identity-endpoint "$DATA_ID/blobServices/default/containers/$DEAD_LETTERS" -o none
}
retry 10 30 subscribe  # the function must be indexed first, and the topic's role assignment seen

log "Alert: any storage event dead-lettered (the system topic's DeadLetteredCount)"
alert_actions=()
if [ -n "$ALERT_ACTION_GROUP" ]; then alert_actions=(--action "$ALERT_ACTION_GROUP"); fi
az monitor metrics alert create --name "${NAME}-dead-letters-${SUFFIX}" --resource-group "$RESOURCE_GROUP" \
  --scopes "$TOPIC_ID" --condition "total DeadLetteredCount > 0" --window-size 5m --evaluation-frequency 5m \
  --severity 2 --description "A blob event failed $EVENT_MAX_ATTEMPTS times: see container $DEAD_LETTERS and docs/azure.md" \
  "${alert_actions[@]}" -o none

API_URL="https://$(az functionapp show --name "$APP" --resource-group "$RESOURCE_GROUP" --query defaultHostName -o tsv)"
log "Done"
cat <<EOF
API:              $API_URL  (check: curl $API_URL/health)
Storage account:  $DATA_ACCOUNT (container $CONTAINER, dead letters in $DEAD_LETTERS)
Key Vault:        $VAULT  (service key: az keyvault secret show --vault-name $VAULT -n service-api-keys --query value -o tsv)
EOF
