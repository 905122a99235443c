if false {keep;} else if true {discard;}
