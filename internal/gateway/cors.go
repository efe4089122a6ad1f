package gateway

import (
	"net/http"

	"github.com/rs/cors"
)

// CORS answers browsers' cross-origin requests from the allowed origins
// (rs/cors): preflights (204, with the methods and headers the API takes,
// cached for ten minutes) and the Access-Control headers of the answers,
// exposing the ones a client reads (ETag, Location, Mantle-Seq,
// Retry-After, X-Request-Id). Origins not listed get no CORS headers, so
// browsers keep their answers from the page. With credentials, cookies
// and HTTP auth may be sent too (the origins must then be explicit).
func CORS(h http.Handler, origins []string, credentials bool) http.Handler {
	return cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Content-Encoding", "If-Match", "Last-Event-ID", "X-Request-Id"},
		ExposedHeaders:   []string{"ETag", "Location", "Mantle-Seq", "Retry-After", "X-Request-Id"},
		AllowCredentials: credentials,
		MaxAge:           600,
	}).Handler(h)
}
