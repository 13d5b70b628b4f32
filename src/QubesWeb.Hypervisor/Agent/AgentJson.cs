using System.Text.Json;
using System.Text.Json.Nodes;

namespace QubesWeb.Hypervisor.Agent;

/// <summary>Requests and replies of the guest agent protocol (QMP): one JSON object each.</summary>
internal static class AgentJson
{
    /// <summary><c>{"execute":command,"arguments":arguments}</c> as UTF-8, without the line end.</summary>
    public static byte[] Request(string command, object? arguments)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("execute", command);
            if (arguments is not null)
            {
                writer.WritePropertyName("arguments");
                switch (arguments)
                {
                    case JsonElement element:
                        element.WriteTo(writer);
                        break;
                    case JsonNode node:
                        node.WriteTo(writer);
                        break;
                    default:
                        JsonSerializer.Serialize(writer, arguments, arguments.GetType());
                        break;
                }
            }
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>The reply's <c>return</c> member (detached from <paramref name="reply"/>'s document).</summary>
    /// <exception cref="GuestAgentException">The reply is an <c>error</c>.</exception>
    public static JsonElement ReturnOf(string command, JsonElement reply)
    {
        if (reply.ValueKind == JsonValueKind.Object)
        {
            if (reply.TryGetProperty("return", out var value))
            {
                return value.Clone();
            }
            if (reply.TryGetProperty("error", out var error))
            {
                throw ErrorOf(command, error);
            }
        }
        throw new InvalidDataException(
            $"The guest agent answered {command} with neither \"return\" nor \"error\": {Truncate(reply.GetRawText())}");
    }

    public static JsonElement ReturnOf(string command, string reply)
    {
        using var document = Parse(command, reply);
        return ReturnOf(command, document.RootElement);
    }

    public static JsonDocument Parse(string command, string reply)
    {
        try
        {
            return JsonDocument.Parse(reply);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The guest agent's reply to {command} is not JSON: {Truncate(reply)}", e);
        }
    }

    private static GuestAgentException ErrorOf(string command, JsonElement error)
    {
        string? Text(string name) =>
            error.ValueKind == JsonValueKind.Object && error.TryGetProperty(name, out var v) &&
            v.ValueKind == JsonValueKind.String
                ? v.GetString()
                : null;

        var errorClass = Text("class");
        return new GuestAgentException(command, errorClass, Text("desc") ?? errorClass ?? "unknown error");
    }

    internal static string Truncate(string text) => text.Length <= 200 ? text : text[..200] + "…";
}
