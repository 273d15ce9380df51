package bus

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Signed reports. A site-agent reports for its site with its agent token
// of the inventory API (pulpdist token create --role agent --site S): every
// event it publishes carries two CloudEvents extensions, the token's id
// and an HMAC-SHA256 of the event keyed by the SHA-256 of the token. The
// inventory keeps exactly that hash of each token, so it can check the MAC
// without ever holding the token, and so knows which token, and therefore
// which site, made the report (docs/adr/0004-signed-agent-reports.md).
const (
	// ExtReportToken is the id of the agent token that signed the event.
	ExtReportToken = "pulpdisttoken"
	// ExtReportMAC is the base64url HMAC-SHA256 of the event (reportMAC).
	ExtReportMAC = "pulpdistmac"
)

// ErrBadReport marks an event whose report signature is missing, malformed
// or wrong.
var ErrBadReport = errors.New("bad report signature")

// ReportKey is the key the holder of token signs reports with: the
// SHA-256 of the token, which is what the inventory stores of it.
func ReportKey(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// ReportTokenID is the id part of an inventory token "pdt_<id>_<secret>".
func ReportTokenID(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, "pdt_")
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" || secret == "" || len(id) > 64 {
		return "", errors.New(`agent token: want the form pdt_<id>_<secret> that "pulpdist token create" prints`)
	}
	return id, nil
}

// reportMAC authenticates the attributes that say what happened and who
// says it (id, source, type, subject, time) and the data, compacted so
// that whitespace does not matter. Each field is length-prefixed.
func reportMAC(key []byte, ev event.Event) ([]byte, error) {
	var data bytes.Buffer
	if raw := ev.Data(); len(raw) > 0 {
		if err := json.Compact(&data, raw); err != nil {
			return nil, fmt.Errorf("%w: data is not JSON", ErrBadReport)
		}
	}
	m := hmac.New(sha256.New, key)
	for _, f := range [][]byte{
		[]byte("pulpdist-report-v1"), []byte(ev.ID()), []byte(ev.Source()), []byte(ev.Type()), []byte(ev.Subject()),
		[]byte(ev.Time().UTC().Format(time.RFC3339Nano)), data.Bytes(),
	} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write(f)
	}
	return m.Sum(nil), nil
}

// SignReport adds the report extensions for the token tokenID, whose
// ReportKey is key, to ev.
func SignReport(ev *event.Event, tokenID string, key []byte) error {
	mac, err := reportMAC(key, *ev)
	if err != nil {
		return err
	}
	ev.SetExtension(ExtReportToken, tokenID)
	ev.SetExtension(ExtReportMAC, base64.RawURLEncoding.EncodeToString(mac))
	return nil
}

// ReportSigner names the token that signed ev; ok is false for an
// unsigned event.
func ReportSigner(ev event.Event) (tokenID string, ok bool) {
	v, err := ev.Context.GetExtension(ExtReportToken)
	if err != nil {
		return "", false
	}
	s, isString := v.(string)
	return s, isString && s != ""
}

// VerifyReport checks the MAC of a signed event against key, the stored
// hash of the token ReportSigner names.
func VerifyReport(ev event.Event, key []byte) error {
	v, err := ev.Context.GetExtension(ExtReportMAC)
	s, isString := v.(string)
	if err != nil || !isString {
		return fmt.Errorf("%w: no %s extension", ErrBadReport, ExtReportMAC)
	}
	got, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64url", ErrBadReport, ExtReportMAC)
	}
	want, err := reportMAC(key, ev)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: the MAC does not match the event and the token", ErrBadReport)
	}
	return nil
}
