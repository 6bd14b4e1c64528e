package workostest

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// controlAdvance serves POST /_fake/advance?days=N&hours=H&churn=F (with
// Config.ControlEndpoint): it calls Advance and answers the AdvanceResult.
func (s *Server) controlAdvance(req *request) response {
	var errs []fieldError
	num := func(name string, def float64) float64 {
		v := req.query.Get(name)
		if v == "" {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0) || math.IsInf(f, 0) {
			errs = append(errs, fieldError{"invalid", name})
			return 0
		}
		return f
	}
	days, hours, churn := num("days", 0), num("hours", 0), num("churn", 0.01)
	d := time.Duration((days*24 + hours) * float64(time.Hour))
	if len(errs) == 0 && (days*24+hours > 100*365*24 || d < 0) {
		errs = append(errs, fieldError{"too_long", "days"})
	}
	if len(errs) > 0 {
		return req.invalid(errs)
	}
	res := s.Advance(d, churn)
	body, err := json.Marshal(struct {
		From   time.Time      `json:"from"`
		To     time.Time      `json:"to"`
		Events int            `json:"events"`
		ByType map[string]int `json:"by_type"`
	}{res.From, res.To, res.Events, res.ByType})
	if err != nil {
		return response{status: http.StatusInternalServerError, body: appendMessage(req.buf, err.Error())}
	}
	return response{status: http.StatusOK, body: append(req.buf[:0], body...)}
}

// controlSetHostile serves POST /_fake/hostile?<modes> (with
// Config.ControlEndpoint): it calls SetHostile with the modes of the query
// (ParseHostile's form; none turns every mode off) and answers as
// controlHostile.
func (s *Server) controlSetHostile(req *request) response {
	h, err := ParseHostile(req.query.Encode())
	if err != nil {
		return response{status: http.StatusUnprocessableEntity, body: appendMessage(req.buf, err.Error())}
	}
	s.SetHostile(h)
	return s.controlHostile(req)
}

// controlHostile serves GET /_fake/hostile (with Config.ControlEndpoint): the
// hostile modes and what they did.
func (s *Server) controlHostile(req *request) response {
	h := s.Hostile()
	body, err := json.Marshal(struct {
		Modes   string       `json:"modes"`
		Hostile Hostile      `json:"hostile"`
		Truth   HostileTruth `json:"truth"`
	}{h.String(), h, s.HostileTruth()})
	if err != nil {
		return response{status: http.StatusInternalServerError, body: appendMessage(req.buf, err.Error())}
	}
	return response{status: http.StatusOK, body: append(req.buf[:0], body...)}
}
