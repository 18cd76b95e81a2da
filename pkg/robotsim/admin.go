package robotsim

import (
	"encoding/json"
	"net/http"
)

// serveRobots answers GET /_sim/robots with the JSON list of [RobotStatus].
func (s *Sim) serveRobots(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Robots())
}

// serveStats answers GET /_sim/stats with the JSON of [Totals].
func (s *Sim) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Totals())
}

// serveReceived answers GET /_sim/robots/{token}/received with the JSON
// list of [Received]; 404 for an unknown token.
func (s *Sim) serveReceived(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	s.mu.Lock()
	_, ok := s.robots[token]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "robot not found"})
		return
	}
	rec := s.Received(token)
	if rec == nil {
		rec = []Received{}
	}
	writeJSON(w, http.StatusOK, rec)
}

// serveRequests answers GET /_sim/robots/{token}/requests with the JSON
// list of [Request]; 404 for an unknown token.
func (s *Sim) serveRequests(w http.ResponseWriter, r *http.Request) {
	reqs := s.Requests(r.PathValue("token"))
	if reqs == nil {
		s.mu.Lock()
		_, ok := s.robots[r.PathValue("token")]
		s.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "robot not found"})
			return
		}
		reqs = []Request{}
	}
	writeJSON(w, http.StatusOK, reqs)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
