//! OpenAI Responses in (`POST /responses`), over a chat completion service.
