require "reject";
reject text: foo
bar
.
;
