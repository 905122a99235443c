# Nothing but a comment: the implicit keep files the message.
