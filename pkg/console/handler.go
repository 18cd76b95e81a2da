package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// cookieName holds the operator token after /login.
const cookieName = "botrelay_console"

// Handler returns the console's routes: the pages (/, /deadletters,
// /deadletters/{seq}, /login), their assets (/assets/) and the JSON API
// (/api/v1/).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.pageFleet)
	mux.HandleFunc("GET /deadletters", s.pageDeadLetters)
	mux.HandleFunc("GET /deadletters/{seq}", s.pageDeadLetter)
	mux.HandleFunc("GET /login", s.pageLogin)
	mux.HandleFunc("POST /login", s.postLogin)
	mux.HandleFunc("GET /api/v1/robots", s.apiRobots)
	mux.HandleFunc("GET /api/v1/deadletters", s.apiDeadLetters)
	mux.HandleFunc("GET /api/v1/deadletters/{seq}", s.apiDeadLetter)
	mux.HandleFunc("GET /api/v1/charts", s.apiCharts)
	mux.Handle("POST /api/v1/deadletters:replay", jsonOnly(http.HandlerFunc(s.apiReplay)))
	mux.Handle("POST /api/v1/deadletters:delete", jsonOnly(http.HandlerFunc(s.apiDelete)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	// Cross-site browser requests (Sec-Fetch-Site, Origin) that change
	// something are refused; scripts send neither header and pass.
	cop := http.NewCrossOriginProtection()
	var h http.Handler = cop.Handler(mux)
	h = s.authenticate(h)
	return securityHeaders(h)
}

// securityHeaders keeps the page to its own scripts and styles, out of
// frames and uncached.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// jsonOnly refuses a body that is not JSON: an HTML form cannot post one
// across sites without a preflight.
func jsonOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate lets a request through when no credential is configured,
// or when it carries the token (header or cookie) or the proxy's header.
// Unauthenticated pages go to /login; the API answers 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.Token == "" && s.cfg.ProxyHeader == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	tokenOK := func(got string) bool {
		sum := sha256.Sum256([]byte(got))
		return s.cfg.Token != "" && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := s.cfg.ProxyHeader != "" && r.Header.Get(s.cfg.ProxyHeader) != ""
		if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && tokenOK(bearer) {
			ok = true
		}
		if c, err := r.Cookie(cookieName); err == nil && tokenOK(c.Value) {
			ok = true
		}
		switch {
		case ok, r.URL.Path == "/login" && s.cfg.Token != "", strings.HasPrefix(r.URL.Path, "/assets/"), r.URL.Path == "/healthz":
			next.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			w.Header().Set("WWW-Authenticate", `Bearer realm="botrelay console"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
		case s.cfg.Token != "" && r.Method == http.MethodGet:
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		default:
			http.Error(w, "authentication required", http.StatusUnauthorized)
		}
	})
}

// postLogin checks the token typed into /login and keeps it in an
// HTTP-only, same-site cookie.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	got := r.PostFormValue("token")
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.cfg.Token))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login", pageData{Title: "Sign in", Error: "That is not the operator token."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: got, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: int((12 * time.Hour).Seconds())})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
