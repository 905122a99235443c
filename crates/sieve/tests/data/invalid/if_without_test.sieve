if { keep; }
