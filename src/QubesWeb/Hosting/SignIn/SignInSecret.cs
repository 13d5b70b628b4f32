using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// The console's sign-in secret, as Jupyter's token: made once from the CSPRNG, kept in the data folder readable only
/// by the console's user, and exchanged for a session cookie. Whoever can read the file owns the console, as whoever
/// can read dom0's files does anyway.
/// </summary>
public sealed class SignInSecret
{
    private const int SecretBytes = 24; // 192 bits, 48 hex digits: long enough, and still pastes as one word.

    private readonly string _path;
    private readonly ILogger<SignInSecret> _log;
    private readonly byte[] _hash;

    /// <summary>Reads the secret, making it at first start or with --rotate-secret (a restart ends every session anyway).</summary>
    public SignInSecret(IOptions<QubesWebOptions> options, IOptions<SignInOptions> signIn, ILogger<SignInSecret> log)
    {
        _path = options.Value.SignInSecretFile;
        _log = log;
        PrivateFiles.CreateFolder(Path.GetDirectoryName(_path)!);
        if (signIn.Value.RotateSecret || !File.Exists(_path))
        {
            Write(NewToken());
            if (signIn.Value.RotateSecret) _log.LogWarning("A new sign-in secret was made (--rotate-secret): the old sign-in link no longer works.");
        }
        Token = File.ReadAllText(_path).Trim();
        if (Token.Length < SecretBytes * 2)
            throw new StartupConfigurationException($"The sign-in secret in {_path} is too short; delete the file (or start with --rotate-secret) to make a new one.");
        _hash = SHA256.HashData(Encoding.UTF8.GetBytes(Token));
    }

    /// <summary>The token of the sign-in link. Shown once at start (and written to the link file), never logged again.</summary>
    public string Token { get; }

    /// <summary>Constant-time: both sides are hashed to the same length first, so neither length nor prefix leaks.</summary>
    public bool Matches(string? candidate)
    {
        if (string.IsNullOrEmpty(candidate) || candidate.Length > 256) return false;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(candidate.Trim()));
        return CryptographicOperations.FixedTimeEquals(hash, _hash);
    }

    private static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(SecretBytes));

    private void Write(string token) => PrivateFiles.WriteAllText(_path, token + "\n");
}
