using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Data.Qubes;

/// <summary>
/// One rule of a qube's firewall (Qubes' qvm-firewall), stored in order: the first rule that matches what the qube
/// sends decides; what none matches gets the qube's <see cref="Qube.FirewallPolicy"/>. The fields are those of
/// <see cref="FirewallRuleSpec"/>, which checks them: a row is only ever written from a checked spec.
/// </summary>
public class FirewallRule
{
    public int Id { get; set; }
    public int QubeId { get; set; }

    /// <summary>0 for the first rule.</summary>
    public int Position { get; set; }

    public FirewallAction Action { get; set; }

    /// <summary>An IPv4 address or network (a.b.c.d/n); null for anywhere.</summary>
    public string? Destination { get; set; }

    public FirewallProtocol Protocol { get; set; }
    public int? PortStart { get; set; }
    public int? PortEnd { get; set; }
    public int? IcmpType { get; set; }

    /// <summary>What the rule is for, in the user's words (Qubes' comment=); never reaches libvirt.</summary>
    public string Comment { get; set; } = "";

    public FirewallRuleSpec ToSpec() => new(Action, Destination, Protocol, PortStart, PortEnd, IcmpType);
}

/// <summary>A rule as a page or a caller gives it: a checked spec and the user's comment.</summary>
public sealed record FirewallRuleInput(FirewallRuleSpec Rule, string Comment = "");

/// <summary>The rules of comments and of a whole firewall, said before anything is written.</summary>
public static class FirewallRules
{
    public const int MaxCommentLength = 200;

    /// <summary>Why <paramref name="comment"/> cannot be stored, or null.</summary>
    public static string? CommentProblem(string? comment) =>
        comment is null ? null
        : comment.Length > MaxCommentLength ? $"A comment is at most {MaxCommentLength} characters; this one has {comment.Length}."
        : comment.Any(char.IsControl) ? "A comment is one line of text, without control characters."
        : null;

    /// <summary>The firewall <paramref name="qube"/> has in the inventory (its rules loaded), as libvirt enforces it.</summary>
    public static FirewallSpec SpecOf(Qube qube) =>
        new(qube.Name, qube.FirewallPolicy, qube.FirewallRules.OrderBy(r => r.Position).Select(r => r.ToSpec()).ToList());
}
