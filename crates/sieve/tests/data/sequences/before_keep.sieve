# An explicit keep still lets the next script run.
keep;
