package httpapi

import _ "embed"

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the API's OpenAPI document (served at GET /v1/openapi.yaml).
func OpenAPI() []byte { return openapiYAML }
