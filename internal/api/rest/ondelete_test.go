package rest_test

import (
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

const relations = `
name: rel
collections:
  authors:
    fields:
      name: { type: text }
    rules: { list: "true", view: "true", create: "true", update: "true", delete: "true" }
  books:
    fields:
      title:  { type: text }
      author: { type: relation, collection: authors }
    rules: { list: "true", view: "true", create: "true", delete: "true" }
  chapters:
    fields:
      book: { type: relation, collection: books, required: true, onDelete: cascade }
    rules: { list: "true", view: "true", create: "true" }
  notes:
    fields:
      about: { type: relation, collection: chapters, onDelete: setNull }
      text:  { type: text }
    rules: { list: "true", view: "true", create: "true" }
`

func create(t *testing.T, s *apptest.Server, coll string, data map[string]any) string {
	t.Helper()
	r := s.Do("POST", "/api/collections/"+coll+"/records", data)
	if r.Status != 201 {
		t.Fatalf("create %s: %d %s", coll, r.Status, r.Body)
	}
	return r.JSON()["id"].(string)
}

// Deleting a referenced record: restrict refuses it (the default), cascade
// deletes what points at it, setNull clears the field, each through the
// one write path with its events; nothing is left dangling.
func TestOnDelete(t *testing.T) {
	s := apptest.Start(t, relations)
	author := create(t, s, "authors", map[string]any{"name": "Ada"})
	book := create(t, s, "books", map[string]any{"title": "Notes", "author": author})
	ch1 := create(t, s, "chapters", map[string]any{"book": book})
	ch2 := create(t, s, "chapters", map[string]any{"book": book})
	note := create(t, s, "notes", map[string]any{"about": ch1, "text": "n"})

	r := s.Do("DELETE", "/api/collections/authors/records/"+author, nil)
	apptest.CheckProblem(t, r, "conflict", "record.referenced", nil)
	if !strings.Contains(string(r.Body), book) {
		t.Errorf("the refusal does not name the referencing record: %s", r.Body)
	}

	before := s.LastSeq()
	if r := s.Do("DELETE", "/api/collections/books/records/"+book, nil); r.Status != 204 {
		t.Fatalf("delete a book with chapters: %d %s", r.Status, r.Body)
	}
	got := strings.Join(s.EventsAfter(before), ",")
	want := "record.updated notes,record.deleted chapters,record.deleted chapters,record.deleted books"
	if got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	for _, id := range []string{ch1, ch2} {
		if r := s.Do("GET", "/api/collections/chapters/records/"+id, nil); r.Status != 404 {
			t.Errorf("chapter %s survived its book: %d", id, r.Status)
		}
	}
	if r := s.Do("GET", "/api/collections/notes/records/"+note, nil); r.Status != 200 || r.JSON()["about"] != nil || r.JSON()["version"] != 2.0 {
		t.Errorf("the note about a deleted chapter: %s", r.Body)
	}
	if r := s.Do("DELETE", "/api/collections/authors/records/"+author, nil); r.Status != 204 {
		t.Errorf("the author, no longer referenced: %d %s", r.Status, r.Body)
	}
}

// An expanded relation whose target is gone, or hidden from the caller,
// is null, never the bare id.
func TestExpandDanglingIsNull(t *testing.T) {
	s := apptest.Start(t, ruled)
	ada, adaAuth := s.User("ada@example.com")
	draft := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "draft", "author": ada}, adaAuth).JSON()["id"].(string)
	if r := s.Do("POST", "/api/collections/comments/records", map[string]any{"post": draft, "body": "c"}, adaAuth); r.Status != 201 {
		t.Fatal(r.Status, string(r.Body))
	}
	r := s.Do("GET", "/api/collections/comments/records?expand=post", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"post":null`) || strings.Contains(string(r.Body), draft) {
		t.Errorf("an anonymous expand of a draft: %s", r.Body)
	}
}
