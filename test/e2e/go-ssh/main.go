// A minimal SSH client built on golang.org/x/crypto/ssh with its default algorithm lists, as the
// client inside Pulumi's command provider (pulumi-command) dials: proves that the server's
// algorithm choices leave that library a way in. Usage: go-ssh HOST:PORT USER KEYFILE COMMAND.
package main

import (
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: go-ssh HOST:PORT USER KEYFILE COMMAND")
		os.Exit(2)
	}
	address, user, keyFile, command := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	if err := run(address, user, keyFile, command); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(address, user, keyFile, command string) error {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return fmt.Errorf("parse key: %w", err)
	}
	client, err := ssh.Dial("tcp", address, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer session.Close()
	output, err := session.CombinedOutput(command)
	if err != nil {
		return fmt.Errorf("run: %w: %s", err, output)
	}
	fmt.Printf("%s", output)
	return nil
}
