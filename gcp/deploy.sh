#!/usr/bin/env bash
# Deploy hera-sessions on Google Cloud: bucket, Memorystore Redis, VPC connector, secrets, service accounts,
# the two Cloud Functions (gen2, python313) and their Eventarc triggers; optionally Cloud CDN signed downloads.
#
#   PROJECT_ID=my-project gcp/deploy.sh            # deploy (re-running it updates what exists)
#   DRY_RUN=1 PROJECT_ID=my-project gcp/deploy.sh  # print the commands instead of running them
#
# Settings (environment variables, all optional but PROJECT_ID):
#   PROJECT_ID            the Google Cloud project (default: gcloud's configured project)
#   REGION                asia-northeast1
#   STAGE                 dev; names are hera-sessions-$STAGE-...
#   GCS_BUCKET_NAME       $PROJECT_ID-hera-sessions-$STAGE
#   CORS_ALLOWED_ORIGINS  comma-separated origins for the bucket and the API (default http://localhost:5173)
#   NETWORK               VPC network for Redis and the connector (default)
#   CONNECTOR_RANGE       an unused /28 for the Serverless VPC Access connector (10.8.0.0/28)
#   REDIS_SIZE_GB, REDIS_TIER   1, basic (standard for a replica and automatic failover)
#   UPLOAD_URL_TTL, DOWNLOAD_URL_TTL   300, 900 seconds
#   CDN_MODE              none | cloudcdn-signed (needs CDN_DOMAIN, a DNS name you point at the load balancer)
#   CDN_DOMAIN            e.g. files.example.com
#   EVENT_MAX_ATTEMPTS    deliveries of a storage event before it is dead-lettered (20; Pub/Sub allows 5-100)
#   ALERT_CHANNELS        notification channels for the dead-letter alert (projects/.../notificationChannels/...,
#                         comma-separated; none: the alert shows in Cloud Monitoring only)
#   PYTHON                an interpreter with hera_sessions installed (.venv/bin/python): writes the CORS rules
#
# See docs/gcp.md for what each step creates and how to check the result.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN="${DRY_RUN:-}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

PROJECT_ID="${PROJECT_ID:-$(gcloud config get-value project 2>/dev/null || true)}"
REGION="${REGION:-asia-northeast1}"
STAGE="${STAGE:-dev}"
PREFIX="hera-sessions-${STAGE}"
BUCKET="${GCS_BUCKET_NAME:-${PROJECT_ID}-${PREFIX}}"
CORS_ALLOWED_ORIGINS="${CORS_ALLOWED_ORIGINS:-http://localhost:5173}"
NETWORK="${NETWORK:-default}"
CONNECTOR="${CONNECTOR:-${PREFIX}}"
CONNECTOR_RANGE="${CONNECTOR_RANGE:-10.8.0.0/28}"
REDIS_INSTANCE="${REDIS_INSTANCE:-${PREFIX}}"
REDIS_SIZE_GB="${REDIS_SIZE_GB:-1}"
REDIS_TIER="${REDIS_TIER:-basic}"
UPLOAD_URL_TTL="${UPLOAD_URL_TTL:-300}"
DOWNLOAD_URL_TTL="${DOWNLOAD_URL_TTL:-900}"
CDN_MODE="${CDN_MODE:-none}"
CDN_DOMAIN="${CDN_DOMAIN:-}"
EVENT_MAX_ATTEMPTS="${EVENT_MAX_ATTEMPTS:-20}"
ALERT_CHANNELS="${ALERT_CHANNELS:-}"

API_FUNCTION="${PREFIX}-api"
EVENTS_FUNCTION="${PREFIX}-storage-events"
RUN_SA="${PREFIX}-fn@${PROJECT_ID}.iam.gserviceaccount.com"          # the functions' identity
TRIGGER_SA="${PREFIX}-events@${PROJECT_ID}.iam.gserviceaccount.com"  # Eventarc's identity when it calls
SECRET_TOKEN="${PREFIX}-token-secret"
SECRET_KEYS="${PREFIX}-service-api-keys"
SECRET_REDIS="${PREFIX}-redis-url"
SECRET_CDN_KEY="${PREFIX}-cdn-key"
CDN_KEY_NAME="${PREFIX}-key"
URL_MAP="${PREFIX}-cdn"
DEAD_LETTERS="${PREFIX}-storage-events-dead-letters" # the topic, and the subscription that keeps its messages
DELETED_TRIGGER="${PREFIX}-object-deleted"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# -- helpers -------------------------------------------------------------------------------------------------
log() { printf '\n==> %s\n' "$*" >&2; }

# Run a command that changes something (printed instead under DRY_RUN).
run() {
  if [[ -n "$DRY_RUN" ]]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ -p /dev/stdin ]]; then cat >/dev/null; fi # a secret's value piped in: read, never shown
  else
    "$@"
  fi
}

# Run a read-only query; under DRY_RUN print it and answer with the placeholder $1.
query() {
  local placeholder="$1"
  shift
  if [[ -n "$DRY_RUN" ]]; then
    printf '+ (query)' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
    printf '%s' "$placeholder"
  else
    "$@"
  fi
}

# True when a resource exists (the describe command succeeds); false under DRY_RUN.
exists() {
  [[ -z "$DRY_RUN" ]] && "$@" >/dev/null 2>&1
}

# Under DRY_RUN, show a generated file (CORS rules, environment variables) as it would be used.
show_file() {
  if [[ -n "$DRY_RUN" ]]; then
    printf '+ (file %s)\n' "$(basename "$1")" >&2
    cat "$1" >&2
  fi
}

random_secret() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# Store a value as a new secret, or as a new version of an existing one (value read from stdin).
put_secret() {
  local name="$1"
  if exists gcloud secrets describe "$name" --project="$PROJECT_ID"; then
    run gcloud secrets versions add "$name" --project="$PROJECT_ID" --data-file=-
  else
    run gcloud secrets create "$name" --project="$PROJECT_ID" \
      --replication-policy=user-managed --locations="$REGION" --data-file=-
  fi
}

# Create a secret with a random value once; later runs keep it (rotating is a deliberate act, see docs/gcp.md).
ensure_random_secret() {
  local name="$1"
  if ! exists gcloud secrets describe "$name" --project="$PROJECT_ID"; then
    random_secret | put_secret "$name"
  fi
}

secret_ref() { printf 'projects/%s/secrets/%s/versions/latest' "$PROJECT_ID" "$1"; }

# -- steps ---------------------------------------------------------------------------------------------------
check_settings() {
  [[ -n "$PROJECT_ID" ]] || { echo "Set PROJECT_ID (or run: gcloud config set project ...)" >&2; exit 2; }
  [[ -x "$PYTHON" ]] || { echo "Set PYTHON to an interpreter with hera_sessions installed (make install)" >&2; exit 2; }
  "$PYTHON" -m hera_sessions.http.cors gcs --origins "$CORS_ALLOWED_ORIGINS" >/dev/null # bad origins: stop before any change
  if [[ "$CDN_MODE" == "cloudcdn-signed" && -z "$CDN_DOMAIN" ]]; then
    echo "CDN_MODE=cloudcdn-signed needs CDN_DOMAIN" >&2
    exit 2
  fi
}

enable_apis() {
  log "Enabling the APIs"
  run gcloud services enable --project="$PROJECT_ID" \
    cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
    eventarc.googleapis.com pubsub.googleapis.com storage.googleapis.com redis.googleapis.com \
    vpcaccess.googleapis.com secretmanager.googleapis.com iamcredentials.googleapis.com compute.googleapis.com \
    monitoring.googleapis.com
}

# The bucket's CORS rules (gcp/cors.json's rule) for the real origins, from the one source the API uses too.
cors_file() {
  "$PYTHON" -m hera_sessions.http.cors gcs --origins "$CORS_ALLOWED_ORIGINS" >"$WORK/cors.json"
  show_file "$WORK/cors.json"
  printf '%s' "$WORK/cors.json"
}

create_bucket() {
  log "Bucket gs://$BUCKET (uniform access, public access prevention, no soft delete, CORS, lifecycle)"
  if ! exists gcloud storage buckets describe "gs://$BUCKET" --project="$PROJECT_ID"; then
    # No soft delete: an erased session's objects must not stay recoverable for another week.
    run gcloud storage buckets create "gs://$BUCKET" --project="$PROJECT_ID" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention --soft-delete-duration=0
  fi
  local cors
  cors="$(cors_file)"
  run gcloud storage buckets update "gs://$BUCKET" --project="$PROJECT_ID" \
    --cors-file="$cors" --lifecycle-file="$ROOT/gcp/lifecycle.json"
}

create_network_access() {
  log "Serverless VPC Access connector $CONNECTOR ($CONNECTOR_RANGE on $NETWORK): functions → Redis"
  if ! exists gcloud compute networks vpc-access connectors describe "$CONNECTOR" \
    --region="$REGION" --project="$PROJECT_ID"; then
    run gcloud compute networks vpc-access connectors create "$CONNECTOR" --project="$PROJECT_ID" \
      --region="$REGION" --network="$NETWORK" --range="$CONNECTOR_RANGE" \
      --machine-type=e2-micro --min-instances=2 --max-instances=3
  fi
}

create_redis() {
  log "Memorystore for Redis $REDIS_INSTANCE (redis_7_0, $REDIS_TIER, ${REDIS_SIZE_GB} GB, AUTH on)"
  if ! exists gcloud redis instances describe "$REDIS_INSTANCE" --region="$REGION" --project="$PROJECT_ID"; then
    # noeviction: Redis holds the only record of each session; a full Redis must refuse writes, not drop sessions.
    run gcloud redis instances create "$REDIS_INSTANCE" --project="$PROJECT_ID" --region="$REGION" \
      --redis-version=redis_7_0 --tier="$REDIS_TIER" --size="$REDIS_SIZE_GB" --network="$NETWORK" \
      --enable-auth --redis-config=maxmemory-policy=noeviction
  fi
  local host port auth
  host="$(query 10.0.0.3 gcloud redis instances describe "$REDIS_INSTANCE" --region="$REGION" \
    --project="$PROJECT_ID" --format='value(host)')"
  port="$(query 6379 gcloud redis instances describe "$REDIS_INSTANCE" --region="$REGION" \
    --project="$PROJECT_ID" --format='value(port)')"
  auth="$(query AUTH-STRING gcloud redis instances get-auth-string "$REDIS_INSTANCE" --region="$REGION" \
    --project="$PROJECT_ID" --format='value(authString)')"
  log "Secret $SECRET_REDIS (the Redis URL, with its AUTH string)"
  printf 'redis://:%s@%s:%s/0' "$auth" "$host" "$port" | put_secret "$SECRET_REDIS"
}

create_secrets() {
  log "Secrets $SECRET_TOKEN and $SECRET_KEYS (random, created once)"
  ensure_random_secret "$SECRET_TOKEN"
  ensure_random_secret "$SECRET_KEYS"
}

create_service_accounts() {
  log "Service accounts: $RUN_SA (the functions), $TRIGGER_SA (Eventarc)"
  local name
  for name in "${PREFIX}-fn" "${PREFIX}-events"; do
    if ! exists gcloud iam service-accounts describe "$name@${PROJECT_ID}.iam.gserviceaccount.com" \
      --project="$PROJECT_ID"; then
      run gcloud iam service-accounts create "$name" --project="$PROJECT_ID" --display-name="hera-sessions $STAGE"
    fi
  done
}

grant_roles() {
  log "Least privilege: objects in one bucket, signing as itself, reading its secrets"
  run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUN_SA" --role=roles/storage.objectAdmin
  # Signed URLs without a key file: the IAM signBlob API, as itself.
  run gcloud iam service-accounts add-iam-policy-binding "$RUN_SA" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUN_SA" --role=roles/iam.serviceAccountTokenCreator
  local secret
  for secret in "$SECRET_TOKEN" "$SECRET_KEYS" "$SECRET_REDIS"; do
    run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT_ID" \
      --member="serviceAccount:$RUN_SA" --role=roles/secretmanager.secretAccessor
  done
  # Eventarc: the trigger's identity receives events; Cloud Storage's service agent publishes them.
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
    --member="serviceAccount:$TRIGGER_SA" --role=roles/eventarc.eventReceiver
  local agent
  agent="$(query service-123456789012@gs-project-accounts.iam.gserviceaccount.com \
    gcloud storage service-agent --project="$PROJECT_ID")"
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
    --member="serviceAccount:$agent" --role=roles/pubsub.publisher
}

env_vars_file() {
  local file="$WORK/env.yaml"
  {
    printf 'STORAGE_MODE: "cloud"\n'
    printf 'CLOUD_STORAGE_TYPE: "gcs"\n'
    printf 'GCS_BUCKET_NAME: "%s"\n' "$BUCKET"
    printf 'SESSION_TYPE: "redis"\n'
    printf 'REDIS_URL: "%s"\n' "$(secret_ref "$SECRET_REDIS")"
    printf 'TOKEN_SECRET: "%s"\n' "$(secret_ref "$SECRET_TOKEN")"
    printf 'SERVICE_API_KEYS: "%s"\n' "$(secret_ref "$SECRET_KEYS")"
    printf 'CORS_ALLOWED_ORIGINS: "%s"\n' "$CORS_ALLOWED_ORIGINS"
    printf 'UPLOAD_URL_TTL: "%s"\n' "$UPLOAD_URL_TTL"
    printf 'DOWNLOAD_URL_TTL: "%s"\n' "$DOWNLOAD_URL_TTL"
    if [[ "$CDN_MODE" == "cloudcdn-signed" ]]; then
      printf 'CDN_MODE: "cloudcdn-signed"\n'
      printf 'CDN_DOMAIN: "%s"\n' "$CDN_DOMAIN"
      printf 'CDN_KEY_ID: "%s"\n' "$CDN_KEY_NAME"
      printf 'CDN_PRIVATE_KEY: "%s"\n' "$(secret_ref "$SECRET_CDN_KEY")"
      printf 'CDN_URL_MAP: "projects/%s/global/urlMaps/%s"\n' "$PROJECT_ID" "$URL_MAP"
    fi
  } >"$file"
  show_file "$file"
  printf '%s' "$file"
}

package() {
  log "Packaging gcp/dist (main.py, requirements.txt, hera_sessions)"
  run "$ROOT/scripts/gcp-package.sh"
}

deploy_functions() {
  local env_file
  env_file="$(env_vars_file)"
  local common=(
    --project="$PROJECT_ID" --region="$REGION" --gen2 --runtime=python313 --source="$ROOT/gcp/dist"
    --service-account="$RUN_SA" --vpc-connector="$CONNECTOR" --egress-settings=private-ranges-only
    --env-vars-file="$env_file" --memory=512Mi
  )
  log "Function $API_FUNCTION (HTTP, public: every route checks its own service key or session token)"
  run gcloud functions deploy "$API_FUNCTION" "${common[@]}" \
    --entry-point=api --trigger-http --allow-unauthenticated --timeout=30s --concurrency=20 --cpu=1

  log "Function $EVENTS_FUNCTION (object finalized, retried on failure)"
  run gcloud functions deploy "$EVENTS_FUNCTION" "${common[@]}" \
    --entry-point=storage_events --trigger-bucket="$BUCKET" --retry \
    --trigger-service-account="$TRIGGER_SA" --timeout=60s

  # --trigger-bucket subscribes to "finalized" only: deletions need a second Eventarc trigger, same function.
  log "Eventarc trigger $DELETED_TRIGGER (object deleted → $EVENTS_FUNCTION)"
  run gcloud functions add-invoker-policy-binding "$EVENTS_FUNCTION" --project="$PROJECT_ID" \
    --region="$REGION" --member="serviceAccount:$TRIGGER_SA"
  if ! exists gcloud eventarc triggers describe "$DELETED_TRIGGER" --location="$REGION" \
    --project="$PROJECT_ID"; then
    run gcloud eventarc triggers create "$DELETED_TRIGGER" --project="$PROJECT_ID" \
      --location="$REGION" --destination-run-service="$EVENTS_FUNCTION" --destination-run-region="$REGION" \
      --event-filters="type=google.cloud.storage.object.v1.deleted" --event-filters="bucket=$BUCKET" \
      --service-account="$TRIGGER_SA"
  fi
}

# An event the function fails (Redis down past every retry, or an event it cannot read: logged with the reason)
# goes, after EVENT_MAX_ATTEMPTS deliveries, to a dead-letter topic whose subscription keeps it 7 days; an alert
# fires while any is waiting. The AWS twin: the SQS dead-letter queue and its alarm.
create_dead_letters() {
  log "Dead letters: $DEAD_LETTERS (topic + subscription), after $EVENT_MAX_ATTEMPTS deliveries of an event"
  if ! exists gcloud pubsub topics describe "$DEAD_LETTERS" --project="$PROJECT_ID"; then
    run gcloud pubsub topics create "$DEAD_LETTERS" --project="$PROJECT_ID"
  fi
  # Messages published to a topic without a subscription are lost: this one keeps them for inspection and replay.
  if ! exists gcloud pubsub subscriptions describe "$DEAD_LETTERS" --project="$PROJECT_ID"; then
    run gcloud pubsub subscriptions create "$DEAD_LETTERS" --project="$PROJECT_ID" --topic="$DEAD_LETTERS" \
      --message-retention-duration=7d --expiration-period=never
  fi
  # Pub/Sub's service agent moves the message: it publishes to the dead-letter topic and acknowledges the original.
  local number agent
  number="$(query 123456789012 gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')"
  agent="service-${number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTERS" --project="$PROJECT_ID" \
    --member="serviceAccount:$agent" --role=roles/pubsub.publisher
  # Each Eventarc trigger (finalized, from --trigger-bucket; deleted) delivers through its own push subscription.
  local finalized trigger subscription
  finalized="$(query "projects/$PROJECT_ID/locations/$REGION/triggers/${EVENTS_FUNCTION}-finalized" \
    gcloud functions describe "$EVENTS_FUNCTION" --gen2 --region="$REGION" --project="$PROJECT_ID" \
    --format='value(eventTrigger.trigger)')"
  for trigger in "${finalized##*/}" "$DELETED_TRIGGER"; do
    subscription="$(query "projects/$PROJECT_ID/subscriptions/eventarc-$REGION-$trigger-sub-000" \
      gcloud eventarc triggers describe "$trigger" --location="$REGION" --project="$PROJECT_ID" \
      --format='value(transport.pubsub.subscription)')"
    run gcloud pubsub subscriptions update "$subscription" --project="$PROJECT_ID" \
      --dead-letter-topic="projects/$PROJECT_ID/topics/$DEAD_LETTERS" --max-delivery-attempts="$EVENT_MAX_ATTEMPTS"
    run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$PROJECT_ID" \
      --member="serviceAccount:$agent" --role=roles/pubsub.subscriber
  done

  log "Alert policy: storage events dead-lettered (messages waiting in $DEAD_LETTERS)"
  local policy="$WORK/dead-letter-alert.json"
  cat >"$policy" <<JSON
{
  "displayName": "$PREFIX storage events dead-lettered",
  "combiner": "OR",
  "conditions": [
    {
      "displayName": "Dead-lettered storage events waiting in $DEAD_LETTERS",
      "conditionThreshold": {
        "filter": "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"$DEAD_LETTERS\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
        "comparison": "COMPARISON_GT",
        "thresholdValue": 0,
        "duration": "0s",
        "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_MAX"}]
      }
    }
  ],
  "documentation": {
    "mimeType": "text/markdown",
    "content": "A storage event failed $EVENT_MAX_ATTEMPTS times. Its reason is in the function's logs (storage event unreadable, or Redis/GCS unavailable); docs/gcp.md, 'Dead letters', says how to look and replay."
  }
}
JSON
  show_file "$policy"
  local existing
  existing="$(query "" gcloud monitoring policies list --project="$PROJECT_ID" \
    --filter="displayName=\"$PREFIX storage events dead-lettered\"" --format='value(name)')"
  if [[ -z "$existing" ]]; then
    local channels=()
    if [[ -n "$ALERT_CHANNELS" ]]; then channels=(--notification-channels="$ALERT_CHANNELS"); fi
    run gcloud monitoring policies create --project="$PROJECT_ID" --policy-from-file="$policy" "${channels[@]}"
  fi
}

create_cdn() {
  log "Cloud CDN: backend bucket, signed URL key, URL map, HTTPS load balancer for $CDN_DOMAIN"
  if ! exists gcloud compute backend-buckets describe "$URL_MAP" --project="$PROJECT_ID"; then
    # Cached no longer than a download URL lives.
    run gcloud compute backend-buckets create "$URL_MAP" --project="$PROJECT_ID" --gcs-bucket-name="$BUCKET" \
      --enable-cdn --cache-mode=CACHE_ALL_STATIC --default-ttl="$DOWNLOAD_URL_TTL" \
      --max-ttl="$DOWNLOAD_URL_TTL" --client-ttl="$DOWNLOAD_URL_TTL" \
      --signed-url-cache-max-age="${DOWNLOAD_URL_TTL}s"
    # A 128-bit key, URL-safe base64: registered on the backend bucket and kept in Secret Manager.
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' >"$WORK/cdn.key"
    run gcloud compute backend-buckets add-signed-url-key "$URL_MAP" --project="$PROJECT_ID" \
      --key-name="$CDN_KEY_NAME" --key-file="$WORK/cdn.key"
    put_secret "$SECRET_CDN_KEY" <"$WORK/cdn.key"
    run gcloud compute url-maps create "$URL_MAP" --project="$PROJECT_ID" --default-backend-bucket="$URL_MAP"
    run gcloud compute ssl-certificates create "$URL_MAP" --project="$PROJECT_ID" --domains="$CDN_DOMAIN" --global
    run gcloud compute target-https-proxies create "$URL_MAP" --project="$PROJECT_ID" --url-map="$URL_MAP" \
      --ssl-certificates="$URL_MAP"
    run gcloud compute forwarding-rules create "$URL_MAP" --project="$PROJECT_ID" --global \
      --target-https-proxy="$URL_MAP" --ports=443
  fi
  # Cloud CDN reads the private bucket as its cache-fill service agent.
  local number
  number="$(query 123456789012 gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')"
  run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --project="$PROJECT_ID" \
    --member="serviceAccount:service-${number}@cloud-cdn-fill.iam.gserviceaccount.com" \
    --role=roles/storage.objectViewer
  run gcloud secrets add-iam-policy-binding "$SECRET_CDN_KEY" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUN_SA" --role=roles/secretmanager.secretAccessor
  # Erasing a session invalidates its cached paths: only that permission, through a custom role.
  if ! exists gcloud iam roles describe heraCdnInvalidator --project="$PROJECT_ID"; then
    run gcloud iam roles create heraCdnInvalidator --project="$PROJECT_ID" \
      --title="hera-sessions CDN invalidation" --permissions=compute.urlMaps.invalidateCache
  fi
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
    --member="serviceAccount:$RUN_SA" --role="projects/$PROJECT_ID/roles/heraCdnInvalidator"
}

check_deployment() {
  log "Checking the API"
  local url
  url="$(query https://example-uc.a.run.app gcloud functions describe "$API_FUNCTION" --region="$REGION" \
    --project="$PROJECT_ID" --format='value(serviceConfig.uri)')"
  run curl --fail --silent --show-error "$url/health"
  echo >&2
  log "API: $url   bucket: gs://$BUCKET   (docs/gcp.md, 'Checking a deployment', goes further)"
}

main() {
  check_settings
  enable_apis
  create_bucket
  create_network_access
  create_service_accounts
  create_secrets
  create_redis
  if [[ "$CDN_MODE" == "cloudcdn-signed" ]]; then
    create_cdn
  fi
  grant_roles
  package
  deploy_functions
  create_dead_letters
  check_deployment
}

main "$@"
