#!/bin/sh
# Install what the order saga's logs need in Elasticsearch and Kibana, idempotently:
#
#   setup.sh templates   ILM policy saga-logs, component templates saga-logs@mappings and
#                        saga-logs@settings, index template logs-saga (before the first
#                        line arrives: a data stream takes its mappings when it is created)
#   setup.sh import      Kibana saved objects: data view logs-saga-*, dashboards
#   setup.sh all         both (default)
#
# Used by `task elk:*`, the local Docker stack's setup service and the Kubernetes Job
# elk/eck/import-job.yaml. Settings (environment):
#   ES_URL (http://localhost:9200), KIBANA_URL (http://localhost:5601),
#   ELK_USER / ELK_PASSWORD (unset: no authentication), ES_CA / KIBANA_CA (CA files for
#   https), ELK_DIR (the elk/ folder; default: this script's parent), ELK_WAIT_S (120).
set -eu

ES_URL=${ES_URL:-http://localhost:9200}
KIBANA_URL=${KIBANA_URL:-http://localhost:5601}
ELK_DIR=${ELK_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
ELK_WAIT_S=${ELK_WAIT_S:-120}

# Credentials go through a curl config file, never the command line (ps would show them).
CURL_CONFIG=$(mktemp)
trap 'rm -f "$CURL_CONFIG"' EXIT
chmod 600 "$CURL_CONFIG"
if [ -n "${ELK_USER:-}" ]; then
  printf 'user = "%s:%s"\n' "$ELK_USER" "${ELK_PASSWORD:-}" >"$CURL_CONFIG"
fi

call() { # call CA URL [curl args...]: the response body on stdout; fails on HTTP >= 400
  ca=$1; url=$2; shift 2
  if [ -n "$ca" ]; then
    curl -sS --fail-with-body -K "$CURL_CONFIG" --cacert "$ca" "$@" "$url"
  else
    curl -sS --fail-with-body -K "$CURL_CONFIG" "$@" "$url"
  fi
}

wait_for() { # wait_for NAME CA URL: until it answers 2xx, at most ELK_WAIT_S seconds
  waited=0
  until call "$2" "$3" -o /dev/null 2>/dev/null; do
    if [ "$waited" -ge "$ELK_WAIT_S" ]; then
      echo "setup: $1 did not answer at $3 within ${ELK_WAIT_S}s" >&2
      return 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

es_put() { # es_put PATH FILE
  call "${ES_CA:-}" "$ES_URL$1" -X PUT -H 'Content-Type: application/json' \
    --data-binary "@$ELK_DIR/elasticsearch/$2" >/dev/null
  echo "setup: PUT $1"
}

templates() {
  wait_for Elasticsearch "${ES_CA:-}" "$ES_URL/_cluster/health?wait_for_status=yellow&timeout=5s"
  es_put /_ilm/policy/saga-logs ilm-policy.json
  es_put /_component_template/saga-logs@mappings component-template-mappings.json
  es_put /_component_template/saga-logs@settings component-template-settings.json
  es_put /_index_template/logs-saga index-template.json
}

import_saved_objects() {
  wait_for Kibana "${KIBANA_CA:-}" "$KIBANA_URL/api/status"
  answer=$(call "${KIBANA_CA:-}" "$KIBANA_URL/api/saved_objects/_import?overwrite=true" \
    -X POST -H 'kbn-xsrf: true' --form "file=@$ELK_DIR/kibana/saga-dashboards.ndjson")
  # Kibana answers 200 even when objects fail; the verdict is its "success" field.
  if printf '%s' "$answer" | grep -Eq '"success"[[:space:]]*:[[:space:]]*true'; then
    echo "setup: imported the saved objects into $KIBANA_URL"
  else
    echo "setup: Kibana refused some saved objects: $answer" >&2
    return 1
  fi
}

case ${1:-all} in
  templates) templates ;;
  import) import_saved_objects ;;
  all) templates; import_saved_objects ;;
  *) echo "usage: $0 [templates|import|all]" >&2; exit 2 ;;
esac
