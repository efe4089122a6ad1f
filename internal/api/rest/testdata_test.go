package rest_test

const blog = `
name: blog
collections:
  posts:
    fields:
      title:       { type: text, required: true, max: 20 }
      body:        { type: text }
      views:       { type: number, integer: true, min: 0 }
      score:       { type: number }
      published:   { type: bool }
      tags:        { type: json }
      status:      { type: select, values: [draft, published] }
      author:      { type: relation, collection: people }
      publishedAt: { type: datetime }
    indexes:
      - fields: [views]
      - fields: [title]
        unique: true
    rules:
      list: "true"
      view: "true"
      create: "true"
      update: "true"
  people:
    fields:
      name: { type: text, required: true }
    rules:
      list: "true"
      view: "true"
      create: "true"
  secrets:
    fields:
      value: { type: text }
`
