#!/bin/bash
# dragonfarm: deallocate this Azure VM. A guest power-off leaves an Azure VM "stopped" and still billed for its
# compute; only deallocation stops it. The VM's own managed identity asks Azure Resource Manager, holding a role
# that may deallocate this VM and nothing else.
#   token:  Instance Metadata Service, managed identity endpoint (api-version 2018-02-01, resource management.azure.com)
#   VM id:  Instance Metadata Service, compute/resourceId (api-version 2021-02-01)
#   call:   Virtual Machines - Deallocate, POST {id}/deallocate (api-version 2024-07-01)
set -eu
IMDS=${IMDS:-http://169.254.169.254/metadata}
ARM=${ARM:-https://management.azure.com}
vm=$(curl -sSf -H Metadata:true "$IMDS/instance/compute/resourceId?api-version=2021-02-01&format=text")
token=$(curl -sSf -H Metadata:true "$IMDS/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
curl -sSf -X POST -H "Authorization: Bearer $token" -H "Content-Length: 0" "$ARM$vm/deallocate?api-version=2024-07-01"
