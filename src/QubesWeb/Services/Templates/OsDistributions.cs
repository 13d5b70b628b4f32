namespace QubesWeb.Services.Templates;

/// <summary>
/// The OS families a template can be (its os-distribution feature, as in Qubes): each one's update commands are known
/// (see UpdateCommands); "other" is updated with its own qubesweb-update-command.
/// </summary>
public static class OsDistributions
{
    public static readonly IReadOnlyList<(string Value, string Shown)> All =
        [("debian", "Debian"), ("ubuntu", "Ubuntu"), ("fedora", "Fedora"), ("other", "Other (updated with its own qubesweb-update-command)")];

    public static bool IsKnown(string? value) => All.Any(d => d.Value == value);

    /// <summary>The family an image's file name names (debian-12-genericcloud-amd64.qcow2: debian), or null.</summary>
    public static string? Guess(string fileName)
    {
        var name = fileName.ToLowerInvariant();
        return All.Select(d => d.Value).FirstOrDefault(v => v != "other" && name.Contains(v, StringComparison.Ordinal));
    }
}
