package kvctl

import "fmt"

const bashCompletion = `# kvctl completion for bash: source <(kvctl completion bash)
_kvctl() {
    local cur prev cmd
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd="${COMP_WORDS[1]}"
    local global="--url --cacert --token-file -o --timeout --http1"
    case "$prev" in
        -o) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
        --cacert|--token-file|-f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "get put del ls watch status cluster snapshot completion help" -- "$cur"))
        return
    fi
    local flags=""
    case "$cmd" in
        get) flags="--consistency" ;;
        put) flags="-f --ttl --if-match --if-exists --create --content-type" ;;
        del) flags="--prefix --if-match" ;;
        ls) flags="--keys-only --limit --consistency" ;;
        watch) flags="--since --count" ;;
        cluster) [ "$COMP_CWORD" -eq 2 ] && { COMPREPLY=($(compgen -W "status add remove" -- "$cur")); return; }; flags="--nonvoter" ;;
        snapshot) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -W "$flags $global" -- "$cur"))
}
complete -F _kvctl kvctl
`

const zshCompletion = `#compdef kvctl
# kvctl completion for zsh: source <(kvctl completion zsh)
_kvctl() {
    local -a commands
    commands=(
        'get:print a key'"'"'s value'
        'put:write a key'
        'del:delete a key or a prefix'
        'ls:list keys'
        'watch:stream changes'
        'status:server status'
        'cluster:cluster status and membership'
        'snapshot:download a snapshot'
        'completion:print a completion script'
        'help:usage'
    )
    local -a global
    global=('--url[endpoints]:url:' '--cacert[CA file]:file:_files' '--token-file[token file]:file:_files'
            '-o[output]:format:(text json)' '--timeout[timeout]:duration:' '--http1[HTTP/1.1 only]')
    if (( CURRENT == 2 )); then
        _describe 'command' commands
        return
    fi
    case "$words[2]" in
        get) _arguments $global '--consistency[level]:level:(linearizable leader stale)' '*:key:' ;;
        put) _arguments $global '-f[value file]:file:_files' '--ttl[ttl]:duration:' '--if-match[revision]:rev:' '--if-exists' '--create' '--content-type[type]:type:' '*:arg:' ;;
        del) _arguments $global '--prefix[prefix]:prefix:' '--if-match[revision]:rev:' '*:key:' ;;
        ls) _arguments $global '--keys-only' '--limit[n]:n:' '--consistency[level]:level:(linearizable leader stale)' '*:prefix:' ;;
        watch) _arguments $global '--since[revision]:rev:' '--count[n]:n:' '*:prefix:' ;;
        cluster) _arguments $global '--nonvoter' '1:sub:(status add remove)' '*:arg:' ;;
        snapshot) _arguments $global '1:file:_files' ;;
        completion) _arguments '1:shell:(bash zsh)' ;;
    esac
}
compdef _kvctl kvctl
`

func cmdCompletion(e *env, args []string) error {
	pos, err := e.args("completion", args, 1, 1, nil)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "bash":
		_, err = fmt.Fprint(e.stdout, bashCompletion)
	case "zsh":
		_, err = fmt.Fprint(e.stdout, zshCompletion)
	default:
		return usagef("completion: want bash or zsh, not %q", pos[0])
	}
	return err
}
