console.log("bench: no scenarios yet (issue 7)");
